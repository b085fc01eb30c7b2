"""Every YAML shipped under scenarios/ is valid: scenarios, sweeps (every point), BLER training data
configs (their scenario too) and CSI data set configs."""
from __future__ import annotations

import pytest
import yaml

from tests.conftest import REPO

FILES = sorted((REPO / "scenarios").rglob("*.yaml"))


def test_there_are_bundled_files():
    assert any(f.name == "quickstart.yaml" for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_bundled_yaml_validates(path, monkeypatch):
    monkeypatch.chdir(REPO)          # checkpoints and bases are relative to the repository root
    data = yaml.safe_load(path.read_text())
    if "base" in data:
        from simulator.sweep import read_sweep

        assert len(read_sweep(path).points) >= 1
    elif data.get("kind") == "deeprx_data":      # a DeepRx data set config (airtune data deeprx)
        from models.deeprx.data import load_data_config

        load_data_config(path)
    elif "source" in data:           # a CSI data set config (airtune data csi)
        from models.csi_codec.data import load_data_config

        load_data_config(path)
    elif "scenario" in data:
        from simulator.loader import validate_data
        from simulator.training_data import load_data_config

        validate_data(load_data_config(path).scenario)
    else:
        from simulator.loader import load_scenario

        load_scenario(path)
