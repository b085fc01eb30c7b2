"""Every YAML shipped under scenarios/ is valid: scenarios, sweeps (every point), BLER training data
configs (their scenario too) and CSI data set configs. A file that names generated data (``data/``,
git-ignored, made by ``airtune data``) is skipped where that data has not been made, so a clean
clone passes; the validation step still refuses a missing dataset when a user runs it."""
from __future__ import annotations

import pytest
import yaml

from simulator.loader import ConfigError, load_scenario
from tests.conftest import REPO

FILES = sorted((REPO / "scenarios").rglob("*.yaml"))
GENERATED = "data/"          # git-ignored datasets (`airtune data ...`), relative to the repository root


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def missing_generated_data(data: dict) -> list[str]:
    """The ``data/`` paths a bundled file (or the scenario file its ``base`` names) refers to
    that do not exist here."""
    docs = [data]
    if isinstance(data.get("base"), str) and (REPO / data["base"]).is_file():
        docs.append(yaml.safe_load((REPO / data["base"]).read_text()))
    paths = {s for d in docs for s in _strings(d) if s.startswith(GENERATED)}
    return sorted(p for p in paths if not (REPO / p).exists())


def test_there_are_bundled_files():
    assert any(f.name == "quickstart.yaml" for f in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_bundled_yaml_validates(path, monkeypatch):
    monkeypatch.chdir(REPO)          # checkpoints and bases are relative to the repository root
    # the files' validity, not this machine's memory (tests/simulator/test_memory_estimate.py)
    monkeypatch.setattr("simulator.memory_estimate.machine_bytes", lambda: 1 << 40)
    data = yaml.safe_load(path.read_text())
    missing = missing_generated_data(data)
    if missing:
        pytest.skip(f"needs generated data {', '.join(missing)} (see the header of the file or its base)")
    if "base" in data:
        from simulator.sweep.spec import read_sweep

        assert len(read_sweep(path).points) >= 1
    elif data.get("kind") == "deeprx_data":      # a DeepRx data set config (airtune data deeprx)
        from simulator.datagen.deeprx import load_data_config

        load_data_config(path)
    elif "source" in data:           # a CSI data set config (airtune data csi)
        from simulator.datagen.csi import load_data_config

        load_data_config(path)
    elif "scenario" in data:
        from simulator.loader import validate_data
        from simulator.datagen.bler import load_data_config
        from simulator.validation import check_files

        check_files(validate_data(load_data_config(path).scenario))
    else:
        from simulator.loader import load_scenario
        from simulator.validation import check_files

        check_files(load_scenario(path), path)


def test_the_receiver_adaptation_refuses_a_scheduler():
    with pytest.raises(ConfigError, match=r"models.receiver.adaptation: the receiver adaptation regenerates "
                                          r"whole-carrier received grids of one UE: not with a scheduler"):
        load_scenario(REPO / "scenarios" / "deeprx_adaptation.yaml", overrides=['scheduler={"kind": "round_robin"}'])
