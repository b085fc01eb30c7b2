"""The scheduled cell on the abstraction: PF over the PRB groups of 52 PRB, a 4x8 gNB array, ideal
CSI, CDL-C, UEs at 3-60 km/h, one thread.

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_cell.py
Requirement (issue 13, item 6): >= 2,000 cell-slots/s with 8 UEs (real time at 30 kHz), cost by
UEs (1, 4, 16, 64). One UE per PRB group for now (MU-MIMO is not wired into the event loop yet).
Each figure is cell slots per second of the event loop (``RunSummary.slots_per_s`` / UEs; setup
excluded), best of ``REPEATS`` runs, with the load average before the first. Measured (2 cores,
load average 0.8-0.9): 1 / 4 / 8 / 16 / 64 UEs 8,990 / 4,910 / 3,130 / 1,840 / 540 cell-slots/s.
The cost grows about linearly with the UEs: every UE's rate, CSI-RS occasions and reports are
per-UE Python work, although PF on wideband CQIs serves about one UE a slot.
"""
from __future__ import annotations

import os

import pytest

from simulator.threads import limit_threads

limit_threads(1)          # before TensorFlow runs its first op; BLAS already loaded: through threadpoolctl

from simulator.engine import Simulation  # noqa: E402 - after the thread limit
from simulator.loader import validate_data  # noqa: E402

pytestmark = pytest.mark.benchmark
REPEATS = 2
DURATION_S = 1.0
REQUIRED_CELL_SLOTS_PER_S = 2_000          # 8 UEs


def scenario(num_ues: int):
    speeds = [3, 30, 60, 120]
    ues = [{"id": u, "mobility": {"model": "linear", "speed_kmh": speeds[u % 4], "start_m": [20.0 + 5 * u, 0, 1.5]}}
           for u in range(num_ues)]
    return validate_data({
        "name": f"bench_cell_{num_ues}", "seed": 1, "duration_s": DURATION_S,
        "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": 52, "carrier_frequency_ghz": 3.5},
        "csi_rs": {"period_ms": 20, "report_delay_ms": 2, "report": {"kind": "ideal"}},
        "gnb": {"antenna_rows": 4, "antenna_cols": 8},
        "channel": {"model": "cdl", "profile": "C", "delay_spread_ns": 100},
        "snr": {"model": "fixed", "snr_db": 10}, "scheduler": {"kind": "pf"}, "ues": ues,
    })


def test_pf_cell_slots_per_second(tmp_path):
    Simulation(scenario(2), tmp_path / "warm").run()                  # imports, first TF ops
    figures = {}
    for num_ues in (1, 4, 8, 16, 64):
        sc = scenario(num_ues)
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        best = max(Simulation(sc, tmp_path / f"{num_ues}_{k}").run().slots_per_s for k in range(REPEATS))
        figures[num_ues] = best / num_ues
        print(f"\n[bench] PF cell, {num_ues:2d} UEs, 4x8 gNB, 52 PRB, ideal CSI: {figures[num_ues]:8,.0f} cell-slots/s "
              f"(best of {REPEATS}; load average {load})", end="")
    print()
    assert figures[8] >= REQUIRED_CELL_SLOTS_PER_S
