"""File paths inside a scenario (issue 16, item 3): the scenario file's folder first, then the
working directory, then the airtune installation (bundled checkpoints)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from simulator.loader import load_scenario
from simulator.sweep.spec import read_sweep

REPO = Path(__file__).resolve().parents[2]
BUNDLED = "models/checkpoints/ff_bler_tdl_a30.json"


def _copy_checkpoint(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".npz"):
        shutil.copy(REPO / BUNDLED.replace(".json", suffix), dest)      # the JSON names its .npz


def _scenario_with(tmp_path: Path, checkpoint: str) -> Path:
    doc = yaml.safe_load((REPO / "scenarios" / "quickstart.yaml").read_text())
    doc["models"]["bler_predictor"]["checkpoint"] = checkpoint
    path = tmp_path / "study" / "scenario.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_path_next_to_the_scenario_wins_over_the_working_directory(tmp_path, monkeypatch):
    scenario = _scenario_with(tmp_path, "ckpt/ff_bler_tdl_a30.json")
    _copy_checkpoint(tmp_path / "study" / "ckpt")           # next to the scenario
    _copy_checkpoint(tmp_path / "cwd" / "ckpt")             # and under the working directory
    monkeypatch.chdir(tmp_path / "cwd")
    sc = load_scenario(scenario)
    assert Path(sc.models.bler_predictor.checkpoint) == tmp_path / "study" / "ckpt" / "ff_bler_tdl_a30.json"
    shutil.rmtree(tmp_path / "study" / "ckpt")              # gone there: the working directory's
    assert load_scenario(scenario).models.bler_predictor.checkpoint == "ckpt/ff_bler_tdl_a30.json"


def test_bundled_paths_resolve_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sc = load_scenario(REPO / "scenarios" / "quickstart.yaml")
    assert Path(sc.models.bler_predictor.checkpoint) == REPO / BUNDLED
    missing = load_scenario(_scenario_with(tmp_path, "nowhere/x.json"))
    assert missing.models.bler_predictor.checkpoint == "nowhere/x.json"     # kept as given: the check names it


def test_sweep_points_resolve_against_their_base_scenario(tmp_path, monkeypatch):
    scenario = _scenario_with(tmp_path, "ckpt/ff_bler_tdl_a30.json")
    _copy_checkpoint(tmp_path / "study" / "ckpt")
    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"base: {scenario}\ngrid: {{seed: [1, 2]}}\noutput: {{dir: {tmp_path / 'out'}}}\n")
    monkeypatch.chdir(tmp_path)
    sweep = read_sweep(spec)
    assert {Path(p.scenario.models.bler_predictor.checkpoint) for p in sweep.points} == {
        tmp_path / "study" / "ckpt" / "ff_bler_tdl_a30.json"}


def test_validate_a_bundled_scenario_from_elsewhere(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-m", "simulator.cli", "validate", str(REPO / "scenarios" / "quickstart.yaml")],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and ": ok (quickstart" in res.stdout, res.stderr
