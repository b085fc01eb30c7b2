"""Sweep speed: a 4-point sweep (seeds 1-4) of the quickstart scenario on the LocalCluster against
the same 4 points run one after another in one process, timed in the same run.

Run: .venv/bin/python -m pytest -m benchmark -s tests/benchmarks/bench_sweep.py
Requirement (sweep issue): sweep / sequential <= 0.65 on a 2-core machine.

``test_sweep_on_running_cluster...`` (the requirement): both sides warm. The LocalCluster is up
and each worker has run one point (imports done, tables loaded), as when one cluster runs several
sweeps (``airtune experiment``, or ``--scheduler``); the sequential side is this process after one
warm-up point, with one BLAS thread as the workers have. Each side runs 3 times, alternated; the
best of each is compared. The cluster's own start is not in either time: the next test shows it.

``test_sweep_command_from_cold...``: whole commands from a cold start, printed, not asserted.
Also printed: the 4 points as 4 ``airtune run`` commands one after another (each pays its own
imports), the baseline a user without sweeps has. Both sides are timed as whole commands from a cold start, so worker start-up and the TensorFlow
import count for the sweep (``airtune sweep --workers 2``) exactly as the one TensorFlow import
counts for the sequential process. The sequential process gets one BLAS thread (as the Dask
workers do): with two OpenBLAS threads a busy second core slows the engine's per-chunk channel
matmul many times over, which would flatter the sweep. Each side runs twice, alternated, and
the best of each is compared. Also printed for the committed quickstart: the same points run
one after another inside this already warm process (no imports at all). ``duration_s``: None =
the quickstart as committed; 40 s shows how the fixed cost of the cluster weighs on longer points.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
import yaml

from simulator.engine import Simulation
from simulator.loader import scenario_to_dict
from simulator.sweep.runner import dask_client, run_point, run_sweep
from simulator.sweep.spec import read_sweep
from tests.conftest import REPO

pytestmark = pytest.mark.benchmark
REPEATS = 2

SEQUENTIAL = """
import sys
from simulator.engine import Simulation
from simulator.sweep.spec import read_sweep
for p in read_sweep(sys.argv[1], sys.argv[2]).points:
    Simulation(p.scenario, p.out_dir).run()
"""


def _timed(cmd: list[str], env: dict) -> float:
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    wall = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-3000:]
    return wall


def _sweep_file(tmp_path, name: str, seeds: list[int], duration_s: float | None = None):
    body = {"base": str(REPO / "scenarios" / "quickstart.yaml"), "grid": {"seed": seeds},
            "output": {"dir": str(tmp_path / name)}}
    if duration_s is not None:
        body["set"] = {"duration_s": duration_s}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_sweep_on_running_cluster_vs_points_one_after_another(tmp_path):
    from threadpoolctl import threadpool_limits

    warm_point = read_sweep(_sweep_file(tmp_path, "warm", [101])).points[0]
    client, cluster = dask_client(None, 2, 2)
    try:
        client.run(run_point, scenario_to_dict(warm_point.scenario), str(tmp_path / "warm_workers"))
        Simulation(warm_point.scenario, tmp_path / "warm_here").run()
        load0 = os.getloadavg()[0]
        sweeps, seqs = [], []
        for k in range(3):
            sweep = read_sweep(_sweep_file(tmp_path, f"sweep{k}", [1, 2, 3, 4]))
            t0 = time.monotonic()
            res = run_sweep(sweep, client=client)
            sweeps.append(time.monotonic() - t0)
            assert res.ok and len(res.complete) == 4
            points = read_sweep(_sweep_file(tmp_path, f"seq{k}", [1, 2, 3, 4])).points
            with threadpool_limits(1):
                t0 = time.monotonic()
                for p in points:
                    Simulation(p.scenario, p.out_dir).run()
                seqs.append(time.monotonic() - t0)
    finally:
        client.close()
        cluster.close()
    sweep_s, seq_s = min(sweeps), min(seqs)
    print(f"\n[bench] 4-point quickstart sweep on a running 2-worker LocalCluster, best of 3: {sweep_s:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in sweeps)}) | the points one after another in this process "
          f"{seq_s:.2f} s ({', '.join(f'{t:.2f}' for t in seqs)}) | ratio {sweep_s / seq_s:.2f} (requirement <= 0.65)"
          f" | load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after")
    assert sweep_s / seq_s <= 0.65


@pytest.mark.parametrize("duration_s", [None, 40.0])
def test_sweep_command_from_cold_vs_points_one_after_another(tmp_path, duration_s):
    path = _sweep_file(tmp_path, "sweep", [1, 2, 3, 4], duration_s)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    one_thread = {**env, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    load0 = os.getloadavg()[0]

    seq_cmd = [sys.executable, "-c", SEQUENTIAL, str(path), str(tmp_path / "seq")]
    sweep_cmd = [sys.executable, "-m", "simulator.cli", "sweep", str(path), "--workers", "2", "--no-progress"]
    seqs, sweeps = [], []
    for _ in range(REPEATS):        # alternated, best of each: the machine is shared
        seqs.append(_timed(seq_cmd, one_thread))
        shutil.rmtree(tmp_path / "sweep", ignore_errors=True)
        sweeps.append(_timed(sweep_cmd, env))
    seq, sweep = min(seqs), min(sweeps)
    # what a user without sweeps does: `airtune run` once per point, one after another
    cli = 0.0
    for k, p in enumerate(read_sweep(path, tmp_path / "cli").points):
        point_yaml = tmp_path / f"point{k}.yaml"
        point_yaml.write_text(yaml.safe_dump(scenario_to_dict(p.scenario)))
        cli += _timed([sys.executable, "-m", "simulator.cli", "run", str(point_yaml), "--no-progress"], one_thread)
    warm = None
    if duration_s is None:
        from threadpoolctl import threadpool_limits

        points = read_sweep(path, tmp_path / "warm").points
        Simulation(points[0].scenario, tmp_path / "warmup").run()          # imports, tables
        with threadpool_limits(1):
            t0 = time.monotonic()
            for p in points:
                Simulation(p.scenario, p.out_dir).run()
            warm = time.monotonic() - t0
    sc = read_sweep(path).points[0].scenario
    print(f"\n[bench] 4-point sweep of quickstart ({sc.duration_s:g} s, {sc.phy.backend}, seeds 1-4), best of "
          f"{REPEATS}: airtune sweep --workers 2 {sweep:.1f} s ({', '.join(f'{t:.1f}' for t in sweeps)}) | "
          f"one process, points one after another {seq:.1f} s ({', '.join(f'{t:.1f}' for t in seqs)}) | "
          f"ratio {sweep / seq:.2f}"
          + (f" | same points in this warm process {warm:.1f} s (ratio {sweep / warm:.2f})" if warm else "")
          + f" | `airtune run` once per point {cli:.1f} s (ratio {sweep / cli:.2f})"
          + f" | load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after")
