"""Output folders (issue 16, item 2): checked paths, one writer per folder, failed runs recorded."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from simulator.loader import load_scenario
from simulator.manifest import differences, rerun_refusal
from simulator.output_folder import HOLDER_FILE, FolderError, checked_path, claim

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "scenarios" / "quickstart.yaml")


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "simulator.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


# -- paths ----------------------------------------------------------------------------------------
def test_checked_path_refuses_what_cannot_be_a_folder(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(FolderError, match=r"output.dir: empty"):
        checked_path("")
    with pytest.raises(FolderError, match=r"exists and is not a folder"):
        checked_path(a_file)
    with pytest.raises(FolderError, match=rf"{a_file} is a file, not a folder"):
        checked_path(a_file / "run" / "deeper")
    with pytest.raises(FolderError, match=r"output.dir: cannot create /proc/airtune-run"):
        checked_path("/proc/airtune-run")
    made = checked_path(tmp_path / "new" / "run")
    assert made.is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_checked_path_refuses_a_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(FolderError, match=r"cannot create .*ro/run: Permission denied"):
            checked_path(ro / "run")
        with pytest.raises(FolderError, match=r"is not writable"):
            checked_path(ro)
    finally:
        ro.chmod(0o700)


def test_a_held_folder_is_refused_naming_its_holder(tmp_path):
    with claim(tmp_path / "run") as out:
        doc = json.loads((out / HOLDER_FILE).read_text())
        assert doc["pid"] == os.getpid()
        with pytest.raises(FolderError, match=rf"in use by pid {os.getpid()} on .* \(started 20"):
            with claim(out):
                pass
    assert not (tmp_path / "run" / HOLDER_FILE).exists()
    with claim(tmp_path / "run"):            # released: claimable again
        pass


def test_a_sweep_folder_in_use_is_refused(tmp_path):
    from simulator.sweep.runner import run_sweep
    from simulator.sweep.spec import SweepError, read_sweep

    spec = tmp_path / "sweep.yaml"
    spec.write_text(f"base: {QUICK}\nset: {{duration_s: 0.01}}\ngrid: {{seed: [1]}}\n"
                    f"output: {{dir: {tmp_path / 'sweep'}}}\n")
    sweep = read_sweep(spec)
    with claim(sweep.out_dir):
        with pytest.raises(SweepError, match=rf"output.dir: .*sweep is in use by pid {os.getpid()}"):
            run_sweep(sweep, workers=1)
    assert not (sweep.out_dir / "sweep.json").exists()      # nothing written by the refused sweep


# -- reruns -----------------------------------------------------------------------------------------
def test_differences_lists_dotted_paths():
    old = {"seed": 1, "carrier": {"num_prbs": 52, "scs_khz": 30}, "ues": [{"id": 0}], "gone": 1}
    new = {"seed": 3, "carrier": {"num_prbs": 106, "scs_khz": 30}, "ues": [{"id": 0}, {"id": 1}], "extra": 2}
    assert differences(old, new) == ["carrier.num_prbs: 52 -> 106", "extra: (absent) -> 2",
                                     "gone: 1 -> (absent)", "seed: 1 -> 3", "ues: [{'id': 0}] -> [{'id': 0}, {'id': 1}]"]
    assert differences(old, old) == []


def test_rerun_refusal_names_fields_and_unreadable_manifests(tmp_path):
    from simulator.loader import scenario_to_dict

    sc = scenario_to_dict(load_scenario(QUICK, [f"output.dir={tmp_path}"]))
    assert rerun_refusal(tmp_path, sc) is None                     # no manifest: a fresh folder
    (tmp_path / "manifest.json").write_text(json.dumps({"scenario": sc, "status": "complete"}))
    assert rerun_refusal(tmp_path, sc) is None                     # the same scenario: resume/replace
    other = scenario_to_dict(load_scenario(QUICK, [f"output.dir={tmp_path}", "seed=3"]))
    msg = rerun_refusal(tmp_path, other)
    assert f"differs in seed: {sc['seed']} -> 3" in msg and "--overwrite" in msg
    for garbage in (b"{not json", b"\xff\xfe\x00", b"[1, 2]"):
        (tmp_path / "manifest.json").write_bytes(garbage)
        msg = rerun_refusal(tmp_path, sc)
        assert msg.startswith("output.dir: ") and "manifest.json is unreadable" in msg and "--overwrite" in msg


def test_cli_refuses_unreadable_manifest_and_empty_folder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text("garbage")
    p = _cli("run", QUICK, "--out", str(out), "--no-progress", "--set", "duration_s=0.01")
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2 and "manifest.json is unreadable" in err and "Traceback" not in err
    assert (out / "manifest.json").read_text() == "garbage"                 # nothing overwritten
    for args in (["--out", ""], ["--set", "output.dir="]):
        p = _cli("run", QUICK, "--no-progress", *args)
        _, err = p.communicate(timeout=300)
        assert p.returncode == 2 and "output.dir" in err and "Traceback" not in err, err
    a_file = tmp_path / "f"
    a_file.write_text("x")
    p = _cli("run", QUICK, "--no-progress", "--out", str(a_file / "run"))
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2 and f"output.dir: {a_file / 'run'}: {a_file} is a file" in err, err
    assert "partial logs" not in err


# -- two processes into one folder --------------------------------------------------------------------
def test_second_run_into_a_busy_folder_is_refused_and_the_first_is_intact(tmp_path):
    out = tmp_path / "run"
    args = ["run", QUICK, "--out", str(out), "--no-progress", "--set", "duration_s=120",
            "--set", "output.flush_rows=1000"]
    first = _cli(*args)
    deadline = time.time() + 400
    while time.time() < deadline and not (out / HOLDER_FILE).exists():     # claimed before TensorFlow loads
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()[1]
    second = _cli(*args, "--overwrite")              # same scenario, even --overwrite: the lock decides
    _, err = second.communicate(timeout=300)
    assert second.returncode == 2, err
    assert f"is in use by pid {first.pid}" in err and "started" in err and "Traceback" not in err
    still_running = first.poll() is None
    stdout, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert still_running, "the first run ended before the second was refused: the test proved nothing"
    man = json.loads((out / "manifest.json").read_text())
    sc = load_scenario(QUICK, ["duration_s=120"])
    assert man["status"] == "complete" and len(pd.read_parquet(out / "slots.parquet")) == sc.num_slots


# -- a failure mid-run (disk full) ----------------------------------------------------------------------
def test_disk_full_mid_run_is_recorded_as_failed_and_keeps_the_parts(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    import simulator.recorder as recorder
    from simulator.engine import Simulation

    real = pq.write_table
    calls = {"n": 0}

    def write_table(table, where, *a, **k):
        calls["n"] += 1
        if calls["n"] > 6:                  # 3 empty first parts, then 3 parts of rows, then the disk is full
            Path(where).write_bytes(b"PAR1 half a part")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(table, where, *a, **k)

    monkeypatch.setattr(recorder.pq, "write_table", write_table)
    sc = load_scenario(QUICK, ["duration_s=3", "output.flush_rows=500", f"output.dir={tmp_path}"])
    with pytest.raises(OSError, match="No space left"):
        Simulation(sc, tmp_path).run()
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["status"] == "failed" and "No space left on device" in man["error"]
    assert not list(tmp_path.rglob("*.tmp"))                        # no half-written part left behind
    slots = pd.read_parquet(tmp_path / "slots.parquet")              # the parts written before stay readable
    assert 0 < len(slots) < sc.num_slots and slots.slot.is_monotonic_increasing
