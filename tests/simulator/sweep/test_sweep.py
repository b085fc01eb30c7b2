"""Sweeps: points validated before anything runs, Dask LocalCluster, resume after a kill, failed points."""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pytest
import yaml

from simulator.engine import Simulation
from simulator.sweep.runner import point_state, run_sweep
from simulator.sweep.spec import SweepError, point_names, read_sweep
from tests.conftest import REPO, TINY

TABLES = ("slots", "periods", "updates")


def write_sweep(tmp_path, body: dict, base: dict | None = None):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(copy.deepcopy(base or TINY)))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": "base.yaml", **body}, sort_keys=False))
    return path


def manifests(out):
    found = {}
    for m in out.glob("*/manifest.json"):
        try:
            found[m.parent.name] = json.loads(m.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return found


def test_points_cartesian_grid_times_zip_with_readable_unique_names(tmp_path):
    path = write_sweep(tmp_path, {
        "set": {"duration_s": 0.1},
        "grid": {"link_adaptation.olla.bler_target": [0.05, 0.1], "seed": [1, 2, 3]},
        "zip": {"snr.snr_db": [5, 20], "ues.0.mobility.speed_kmh": [3, 60]},
        "output": {"dir": str(tmp_path / "out")}})
    sweep = read_sweep(path)
    assert len(sweep.points) == 2 * 3 * 2
    first = sweep.points[0]
    assert first.params == {"link_adaptation.olla.bler_target": 0.05, "seed": 1, "snr.snr_db": 5,
                            "ues.0.mobility.speed_kmh": 3}
    assert first.name == "bler_target=0.05,seed=1,snr_db=5,speed_kmh=3"
    sc = first.scenario
    assert (sc.link_adaptation.olla.bler_target, sc.seed, sc.snr.snr_db, sc.ues[0].mobility.speed_kmh,
            sc.duration_s) == (0.05, 1, 5.0, 3.0, 0.1)
    assert sweep.points[-1].params["snr.snr_db"] == 20 and sweep.points[-1].scenario.ues[0].mobility.speed_kmh == 60
    assert len({p.name for p in sweep.points}) == len(sweep.points)
    assert {p.out_dir.parent for p in sweep.points} == {tmp_path / "out"}
    # shared last components fall back to the dotted key; odd characters become _
    assert point_names(["a.x", "b.x", "c"], [(1, 2, "p/q")]) == ["a.x=1,b.x=2,c=p_q"]


def test_bad_point_reported_before_anything_runs(tmp_path, capsys):
    from simulator.cli import main

    out = tmp_path / "out"
    path = write_sweep(tmp_path, {"grid": {"harq.max_transmissions": [4, 0], "seed": [1, 2]},
                                  "zip": {"csi_rs.period_ms": [10, 0.3]}, "output": {"dir": str(out)}})
    assert main(["sweep", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "invalid sweep" in err and "Traceback" not in err
    # the point and the field, each problem once
    assert ("points max_transmissions=0,seed=1,period_ms=10, max_transmissions=0,seed=1,period_ms=0.3, "
            "max_transmissions=0,seed=2,period_ms=10 and 1 more: harq.max_transmissions:") in err
    assert ("points max_transmissions=4,seed=1,period_ms=0.3, max_transmissions=4,seed=2,period_ms=0.3: "
            "csi_rs.period_ms: must be a whole number of 0.5 ms slots") in err
    assert not out.exists()
    assert main(["sweep", str(path), "--scheduler", "head-node"]) == 2
    assert "--scheduler: missing port number" in capsys.readouterr().err

    for body, needle in [
        # a million points are refused before the product is built (each point is a full run)
        ({"grid": {"seed": list(range(1000)), "snr.snr_db": list(range(1000))}, "output": {"dir": "x"}},
         "grid: 1,000,000 points, more than 10,000"),
        ({"grid": {"seed": []}, "output": {"dir": "x"}}, "grid.seed: needs at least one value (line 3)"),
        ({"zip": {"seed": [1, 2], "snr.snr_db": [1]}, "output": {"dir": "x"}}, "zip: lists must have one length"),
        ({"grid": {"seed": [1]}, "output": {"dir": "x"}, "sed": 1}, "sed: unknown key"),
        ({"grid": {"seed": [1, 1]}, "output": {"dir": "x"}}, "points repeat (seed=1)"),
        ({"grid": {"nope.field": [1]}, "output": {"dir": "x"}}, "point field=1: nope: unknown key"),
    ]:
        with pytest.raises(SweepError) as exc:
            read_sweep(write_sweep(tmp_path, body))
        assert needle in str(exc.value).replace("\n", " "), str(exc.value)
    (tmp_path / "base.yaml").unlink()
    with pytest.raises(SweepError, match="base: base.yaml: no such file"):
        read_sweep(tmp_path / "sweep.yaml")


def test_point_that_raises_is_failed_and_the_others_finish(tmp_path):
    import shutil

    bad = tmp_path / "ff_bler_tdl_a30.json"                   # whole when the sweep is validated...
    for ext in (".json", ".npz"):
        shutil.copy(REPO / "models" / "checkpoints" / f"ff_bler_tdl_a30{ext}", tmp_path)
    out = tmp_path / "out"
    path = write_sweep(tmp_path, {"grid": {"models.bler_predictor": [None, {"type": "ff_bler",
                                                                            "checkpoint": str(bad)}],
                                           "seed": [1, 2]},
                                  "output": {"dir": str(out)}})
    sweep = read_sweep(path)
    bad.write_text("{not json")                               # ...and corrupted before its points run
    res = run_sweep(sweep, workers=2)
    failed = {p.name for p in sweep.points if p.scenario.models.bler_predictor is not None}
    assert set(res.failed) == failed and len(res.complete) == 2
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["status"] == "failed" and doc["sweep"]["params"] == ["models.bler_predictor", "seed"]
    rows = {r["name"]: r for r in doc["points"]}
    for p in sweep.points:
        if p.name in failed:
            assert rows[p.name]["status"] == "failed" and "not an airtune checkpoint" in rows[p.name]["error"]
            man = p.out_dir / "manifest.json"           # refused by the worker's file check: nothing written
            assert not man.exists() or json.loads(man.read_text())["status"] == "failed"
            assert point_state(p) == "todo"           # a re-run runs it again from scratch
        else:
            assert rows[p.name]["status"] == "complete" and rows[p.name]["error"] is None
            assert rows[p.name]["summary"]["throughput_mbps"] > 0
            assert len(pd.read_parquet(p.out_dir / "slots.parquet")) == 400
            assert point_state(p) == "complete"


def _sweep_cli(path):
    return subprocess.Popen([sys.executable, "-m", "simulator.cli", "sweep", str(path), "--workers", "2",
                             "--no-progress"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_sweep_resumes_each_point_exactly_once_with_the_logs_of_single_runs(tmp_path):
    """SIGKILL the sweep (driver and its LocalCluster) once two points are complete; the re-run keeps
    those two, re-runs the partial and unstarted ones from scratch, and every point's logs equal a
    run of the same scenario on its own."""
    out = tmp_path / "out"
    path = write_sweep(tmp_path, {"set": {"duration_s": 1.5, "output.flush_rows": 500},
                                  "grid": {"seed": [1, 2, 3]}, "zip": {"snr.snr_db": [5, 25]},
                                  "output": {"dir": str(out)}})
    sweep = read_sweep(path)
    assert len(sweep.points) == 6
    p = _sweep_cli(path)
    deadline = time.time() + 120
    done = {}
    while time.time() < deadline and p.poll() is None:
        done = {n: m for n, m in manifests(out).items() if m["status"] == "complete"}
        if len(done) >= 2:
            break
        time.sleep(0.05)
    procs = psutil.Process(p.pid).children(recursive=True)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert 2 <= len(done) < 6, p.stderr.read()
    # the workers go with their parent: nothing keeps writing into the folders
    _, alive = psutil.wait_procs(procs, timeout=30)
    assert not alive
    before = manifests(out)
    done = {n for n, m in before.items() if m["status"] == "complete"}
    partial = {n for n, m in before.items() if m["status"] != "complete"}
    assert len(done) < 6 and partial, before.keys()       # killed while points were running
    stamps = {n: (out / n / "slots.parquet").stat().st_mtime_ns for n in done}

    p = _sweep_cli(path)
    stdout, stderr = p.communicate(timeout=180)
    assert p.returncode == 0, stderr
    # the workers' TensorFlow start-up lines stay off the terminal (simulator.quiet)
    assert "absl::InitializeLog" not in stderr and "oneDNN" not in stderr and "cuda" not in stderr, stderr
    assert f"{6 - len(done)} run, {len(done)} already complete, 0 failed" in stdout
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["status"] == "complete" and [r["status"] for r in doc["points"]] == ["complete"] * 6
    assert all(r["summary"]["throughput_mbps"] > 0 for r in doc["points"])     # skipped ones too
    assert sorted(x.name for x in out.iterdir() if x.is_dir()) == sorted(pt.name for pt in sweep.points)
    for n in done:   # skipped, not rewritten
        assert (out / n / "slots.parquet").stat().st_mtime_ns == stamps[n]
        assert json.loads((out / n / "manifest.json").read_text())["started_at"] == before[n]["started_at"]

    for pt in sweep.points:
        ref = tmp_path / "ref" / pt.name
        Simulation(pt.scenario, ref).run()
        for t in TABLES:
            got = out / pt.name / f"{t}.parquet"
            assert got.is_file()                             # merged: a complete run, no part folders
            pd.testing.assert_frame_equal(pd.read_parquet(got), pd.read_parquet(ref / f"{t}.parquet"))
        assert len(pd.read_parquet(out / pt.name / "slots.parquet")) == 3000
