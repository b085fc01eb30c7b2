"""The run manifest: what ran (resolved scenario, seed, package versions, git commit) and how it ended."""
from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

from simulator.loader import scenario_to_dict
from simulator.schema import Scenario

PACKAGES = ("airtune", "sionna-no-rt", "tensorflow", "simpy", "numpy", "pandas", "pyarrow", "pydantic")


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return res.stdout.strip() or None if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def new_manifest(scenario: Scenario) -> dict:
    return {"scenario": scenario_to_dict(scenario), "seed": scenario.seed, "versions": versions(),
            "git_commit": git_commit(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def read_manifest(out_dir: Path) -> dict | None:
    p = Path(out_dir) / "manifest.json"
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
