"""What a link-level run waits for when link adaptation reaches a new MCS, with and without compiling
ahead of need (``phy.compile_ahead``, simulator/phy/compile_ahead.py).

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_compile_ahead.py
Fresh processes (one thread each for BLAS and TensorFlow) run, for ``DURATION_S``, ``scenarios/quickstart.yaml``
with ``phy.backend=link_level`` (52 PRB, TDL-B, 30 km/h, OLLA and LightTune; LS+LMMSE) and
``scenarios/deeprx_adaptation.yaml`` without its fine-tuning (4 PRB, the neural receiver's chains):
- ``off``: ``phy.compile_ahead=0``, persistent XLA cache off (every program compiled in the run);
- ``on``: the default ``compile_ahead`` (4), into an empty persistent cache;
- ``on, cached``: the same again, finding ``on``'s programs in the cache (a second run of a scenario).
Per program (MCS and batch) the backend records its first call (waiting for the background thread
included) and its later calls; the stall of a new program = first call - its mean later call (the
median over programs where it had one call only). The first program of a run is reported apart:
nothing precedes it to compile it ahead. All runs must give the same slots log.

Issue 15 item 1 asks for <= 3 s of compilation at the first transmission of a new MCS, or a second
run paying <= 10 % of the first's compile time; both are printed.

Measured: see docs/validation.md (the row of this benchmark).
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

DURATION_S = 0.3
REPO = Path(__file__).resolve().parents[2]

ARM = r'''
import hashlib, json, sys, time
from simulator.threads import limit_threads
limit_threads(1)
from simulator.quiet import load_tensorflow
load_tensorflow()
from simulator.engine import Simulation
from simulator.loader import load_scenario
sc = load_scenario(sys.argv[4], [f"duration_s={sys.argv[1]}", "phy.backend=link_level",
                                 f"phy.compile_ahead={sys.argv[2]}", *sys.argv[5:]])
sim = Simulation(sc, sys.argv[3])
t0 = time.perf_counter(); summary = sim.run(); wall = time.perf_counter() - t0
phy = sim.phy
out = dict(wall_s=wall, slots_per_s=summary.slots_per_s, programs=[[list(k), v] for k, v in phy.programs.items()],
           ahead=[[list(p), s] for p, s in phy.ahead.compiled] if phy.ahead else [],
           errors=phy.ahead.errors if phy.ahead else [],
           slots=hashlib.sha256(open(sys.argv[3] + "/slots.parquet", "rb").read()).hexdigest())
print("RESULT" + json.dumps(out))
'''


# (scenario, overrides): the quickstart's LS+LMMSE chains; the neural receiver's chains (three programs
# each, the network shared by every MCS) without fine-tuning, whose jobs would share the cores
SCENARIOS = {"quickstart": ("scenarios/quickstart.yaml", []),
             "deeprx": ("scenarios/deeprx_adaptation.yaml", ["models.receiver.adaptation=null"])}


def _arm(reach: int, out: Path, cache: str, scenario: str) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "AIRTUNE_XLA_CACHE": cache}
    env.pop("TF_XLA_FLAGS", None)
    env.pop("AIRTUNE_COMPILE_AHEAD", None)
    path, overrides = SCENARIOS[scenario]
    proc = subprocess.run([sys.executable, "-c", ARM, str(DURATION_S), str(reach), str(out), path, *overrides],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def _stalls(arm: dict) -> tuple[float, list[float]]:
    """(first program's first call s, stalls of the later new programs in order of first use)."""
    later = {}
    for key, (first, n, total, waited) in arm["programs"]:
        if n > 1:
            later[tuple(key)] = (total - (first - waited)) / (n - 1)
    typical = statistics.median(later.values()) if later else 0.0
    stalls = [first - later.get(tuple(key), typical) for key, (first, n, total, waited) in arm["programs"]]
    return arm["programs"][0][1][0], stalls[1:]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_compile_ahead(tmp_path, scenario):
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    cache = str(tmp_path / "xla")
    arms = {"off": _arm(0, tmp_path / "off", "off", scenario), "on": _arm(4, tmp_path / "on", cache, scenario),
            "on, cached": _arm(4, tmp_path / "cached", cache, scenario)}
    assert len({a["slots"] for a in arms.values()}) == 1, "compiling ahead or the cache changed the slots log"
    for program, error in arms["on"]["errors"]:    # MCS the chain cannot simulate (e.g. code rate < 1/3 on BG1)
        print(f"\n[bench] not compiled ahead: MCS {program[0]}: {error[:90]}", end="")
    total = {}
    for label, arm in arms.items():
        first, stalls = _stalls(arm)
        total[label] = first + sum(stalls)
        print(f"\n[bench] {label}: {len(arm['programs'])} programs; the first {first:.1f} s; the later new "
              f"programs' stall median {statistics.median(stalls) if stalls else 0:.2f} s, max "
              f"{max(stalls, default=0):.2f} s, total {sum(stalls):.1f} s; {len(arm['ahead'])} compiled ahead "
              f"({sum(s for _, s in arm['ahead']):.0f} s in the thread); run {arm['wall_s']:.1f} s "
              f"({arm['slots_per_s']:.0f} UE-slots/s in the loop)", end="")
    print(f"\n[bench] {DURATION_S} s of {scenario} at link level; load average {load}")
    first_off, stalls_off = _stalls(arms["off"])
    _, stalls_on = _stalls(arms["on"])
    a = max(stalls_off, default=0) <= 3.0
    b = total["on, cached"] <= 0.10 * total["off"]
    print(f"[bench] issue 15 item 1: <= 3 s at a new MCS after the first in a first run: "
          f"{'met' if a else 'NOT met'} without the thread (compilation alone: max {max(stalls_off, default=0):.2f} s; "
          f"the run's first program {first_off:.2f} s); with the thread sharing the cores, max wait "
          f"{max(stalls_on, default=0):.2f} s; a second run <= 10 % of a first's compile time: "
          f"{'met' if b else 'NOT met'} ({total['on, cached']:.1f} s of {total['off']:.1f} s, "
          f"{total['on, cached'] / total['off']:.0%})")
    assert len(arms["off"]["programs"]) >= 3, "the run did not visit enough MCS to measure anything"
    assert total["on"] < total["off"] and total["on, cached"] < 0.5 * total["off"]
