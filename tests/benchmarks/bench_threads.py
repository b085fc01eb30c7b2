"""Event loop under load: quickstart slots/s with one CPU-bound process beside it, as a ratio to the
idle figure in the same run.

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_threads.py
Requirement (issue 11, item 10): busy / idle >= 0.5 on a 2-core machine.

Each figure is the event loop's slots/s (``RunSummary.slots_per_s``, setup excluded) of
``airtune run scenarios/quickstart.yaml`` run as a user runs it: a fresh process with the command's
thread default (``AIRTUNE_THREADS`` passes through, so ``AIRTUNE_THREADS=0`` measures the
libraries' own defaults, the figure before the limit). The busy runs share the machine with one
process multiplying 256x256 matrices in numpy at OpenBLAS's defaults (one thread per core, as any
unpinned numpy program): of the loads tried (that, the same at one thread, a pure-Python loop) the
one that slowed the unlimited engine most (to 0.01-0.1 of its idle figure). Its two threads and the
engine's one share 2 cores, so about 2/3 is the most the ratio can be there; other jobs on the
machine lower it further. Idle and busy runs alternate ``REPEATS`` times and the best of each side
is compared (other jobs on a shared machine only ever slow a run down); the load average before each
run is printed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from simulator.threads import LIBRARY_ENV
from tests.conftest import REPO

pytestmark = pytest.mark.benchmark
REPEATS = 3
HOG = """
import numpy as np
x = np.random.default_rng(0).standard_normal((256, 256))
while True:
    x = x @ x
    x /= np.abs(x).max()
"""


def _env() -> dict[str, str]:
    """This environment without the libraries' thread variables (a shell that pins them would decide
    for the run and for the load)."""
    env = {k: v for k, v in os.environ.items() if k not in LIBRARY_ENV}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _slots_per_s(out_dir) -> float:
    cmd = [sys.executable, "-m", "simulator.cli", "run", "scenarios/quickstart.yaml", "--out", str(out_dir),
           "--overwrite", "--no-progress"]
    res = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((out_dir / "manifest.json").read_text())["summary"]["slots_per_s"]


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def test_event_loop_keeps_half_its_speed_beside_a_cpu_bound_process(tmp_path):
    idle, busy = [], []
    for k in range(REPEATS):
        load = _load()
        idle.append(_slots_per_s(tmp_path / "idle"))
        print(f"\nround {k + 1}: idle {idle[-1]:8.0f} slots/s (load average {load})", end="")
        hog = subprocess.Popen([sys.executable, "-c", HOG], env=_env())
        try:
            time.sleep(1.0)                       # numpy imported, multiplying
            load = _load()
            busy.append(_slots_per_s(tmp_path / "busy"))
        finally:
            hog.kill()
            hog.wait()
        print(f"; busy {busy[-1]:8.0f} slots/s (load average {load})", end="")
    ratio = max(busy) / max(idle)
    threads = os.environ.get("AIRTUNE_THREADS", "the run default")
    print(f"\nquickstart event loop, threads {threads}: idle {max(idle):.0f} slots/s, beside a numpy matmul "
          f"process {max(busy):.0f} slots/s (best of {REPEATS}): ratio {ratio:.2f}")
    assert ratio >= 0.5
