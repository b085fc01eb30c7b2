"""Abstraction backend speed: UE-slots per second of the event loop on this machine.

Run: .venv/bin/python -m pytest -m benchmark -s tests/benchmarks/bench_abstraction.py
Requirement (engine issue): >= 2,000 slots/s for one UE (real time at 30 kHz); aim 20,000.
"""
from __future__ import annotations

import pytest

from simulator.engine import Simulation
from simulator.loader import load_scenario
from tests.conftest import REPO

pytestmark = pytest.mark.benchmark


@pytest.mark.parametrize("num_ues", [1, 4])
def test_abstraction_slots_per_second(tmp_path, num_ues):
    overrides = ["duration_s=30"]
    if num_ues > 1:
        ues = ", ".join(f"{{id: {i}, mobility: {{model: linear, speed_kmh: 30}}}}" for i in range(num_ues))
        overrides.append(f"ues=[{ues}]")
    sc = load_scenario(REPO / "scenarios" / "quickstart.yaml", overrides)
    Simulation(load_scenario(REPO / "scenarios" / "quickstart.yaml", ["duration_s=0.5"]), tmp_path / "warm").run()
    runs = [Simulation(sc, tmp_path / f"r{k}").run() for k in range(3)]
    best = max(r.slots_per_s for r in runs)
    print(f"\n[bench] abstraction, {num_ues} UE(s), quickstart 52 PRB TDL-B, {sc.num_slots} slots: "
          f"{best:,.0f} UE-slots/s in the event loop (best of 3; setup {runs[0].setup_s:.2f} s, "
          f"whole run {runs[0].wall_s:.2f} s = {sc.num_slots * num_ues / runs[0].wall_s:,.0f} slots/s incl. setup)")
    assert best >= 2000
