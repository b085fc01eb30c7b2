"""The run manifest: what ran (resolved scenario, seed, package versions, git commit) and how it ended."""
from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

from simulator.loader import scenario_to_dict
from simulator.log_schema import result_fields
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
    """The folder's manifest; None if there is none. ValueError (with the reason) if it cannot be read."""
    p = Path(out_dir) / "manifest.json"
    if not p.exists():
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:     # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{p} is unreadable ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{p} is unreadable (a JSON {type(doc).__name__}, not an object)")
    return doc


def differences(old, new, prefix: str = "") -> list[str]:
    """Dotted paths where two resolved scenarios differ, as ``path: old -> new`` (lists compared whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{path}: (absent) -> {new[key]!r}")
            elif key not in new:
                out.append(f"{path}: {old[key]!r} -> (absent)")
            else:
                out.extend(differences(old[key], new[key], path))
        return out
    return [] if old == new else [f"{prefix or '(scenario)'}: {old!r} -> {new!r}"]


def rerun_refusal(out_dir: Path, scenario: dict, shown: int = 6) -> str | None:
    """Why ``scenario`` may not be run into ``out_dir`` without --overwrite, or None if it may: the
    folder's manifest is unreadable, or it records another scenario (the differing fields listed)."""
    try:
        old = read_manifest(out_dir)
    except ValueError as exc:
        return f"output.dir: {exc}; pass --overwrite to replace the folder's run or choose another --out"
    if old is None or (isinstance(old.get("scenario"), dict)
                       and result_fields(old["scenario"]) == result_fields(scenario)):
        return None
    diffs = differences(old.get("scenario"), scenario)
    name = old["scenario"].get("name") if isinstance(old.get("scenario"), dict) else None
    listed = "; ".join(diffs[:shown]) + (f"; and {len(diffs) - shown} more" if len(diffs) > shown else "")
    return (f"output.dir: {out_dir} holds a run of a different scenario ({name!r}, "
            f"status {old.get('status')}), which differs in {listed}; pass --overwrite to replace it or choose "
            f"another --out")
