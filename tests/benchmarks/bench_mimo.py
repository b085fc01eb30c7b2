"""Abstraction event loop with a gNB array: one UE, 52 PRB, CDL-C at 30 km/h, one thread.

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_mimo.py
Requirement (issue 12, item 7): >= 10,000 UE-slots/s at 32 gNB antennas (4x8) with ideal CSI on
2 cores, one thread; the figures at 1, 8, 32 and 64 antennas show how the cost grows with the
array, and type1, neural (frozen in-domain codec) and two layers at 32 are printed beside them.
Measured (2 cores, load average 0.5-0.7): 1 / 8 / 32 / 64 antennas 55,100 / 23,700 / 16,350 /
11,500 UE-slots/s; at 32: type1 11,100, neural 5,900, two UE antennas with two layers ideal 6,300 and
type1 (max_rank 2) 3,000. Every report now also logs its precoder's SGCS against the measured
channel's eigenvectors, one eigenproblem per subband (~0.6 ms a report at 32 antennas: most of
type1's drop from 15,900, measured on the earlier tree the same day); a neural report costs three
TensorFlow calls (encode, the UE's expected reconstruction, the gNB's decode).

Each figure is ``RunSummary.slots_per_s`` (the event loop, setup excluded) of ``Simulation.run``
on a scenario built from a dict, the best of ``REPEATS`` runs (other jobs on a shared machine only
slow a run down), with the load average before the first run.

The channel setup is timed apart: ``FadingChannel`` for one UE (one antenna, 30 km/h) over 10 s at
30 kHz (20,000 slots) with the 4x8 gNB, UMi (50 m from the gNB, LoS drawn: LoS at this seed) vs
CDL-C. Measured (load average 1.7-1.9, two runs): UMi LoS 7.2 / 11.5 s, CDL-C 9.6 / 15.0 s; apart,
UMi NLoS 9.9 s; peak RSS UMi 5.2-5.3 GB, CDL-C 6.6 GB (Sionna's ray tensors; see fading.py).
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from simulator.threads import limit_threads

limit_threads(1)          # before TensorFlow runs its first op; BLAS already loaded: through threadpoolctl

from simulator.channel.fading import FadingChannel  # noqa: E402 - after the thread limit
from simulator.engine import Simulation  # noqa: E402
from simulator.loader import validate_data  # noqa: E402
from simulator.schema import ChannelConfig  # noqa: E402

pytestmark = pytest.mark.benchmark
REPEATS = 3
DURATION_S = 3.0
ARRAYS = {1: (1, 1), 8: (2, 4), 32: (4, 8), 64: (4, 16)}      # gNB antennas -> (rows, cols)
REQUIRED_SLOTS_PER_S = 10_000                                  # at 32 antennas, ideal CSI
SETUP_SLOTS = 20_000                                           # 10 s at 30 kHz


# the in-domain codec of mimo_link (4x8, 32 subcarriers), frozen: the neural report's own cost
NEURAL = {"models": {"csi_codec": {"checkpoint": "models/checkpoints/csi_conv_mimo_link_32x32.json"}}}
TWO_LAYERS = {"phy": {"num_ue_antennas": 2}, "max_rank": 2}


def scenario(rows: int, cols: int, kind: str, extra: dict | None = None):
    extra = dict(extra or {})
    max_rank = extra.pop("max_rank", 1)
    return validate_data({
        "name": f"bench_mimo_{rows}x{cols}_{kind}", "seed": 1, "duration_s": DURATION_S,
        "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": 52, "carrier_frequency_ghz": 3.5},
        "csi_rs": {"period_ms": 20, "report_delay_ms": 2, "report": {"kind": kind, "max_rank": max_rank}},
        "gnb": {"antenna_rows": rows, "antenna_cols": cols},
        "channel": {"model": "cdl", "profile": "C", "delay_spread_ns": 100},
        "snr": {"model": "fixed", "snr_db": 0},
        "ues": [{"id": 0, "mobility": {"model": "linear", "speed_kmh": 30, "start_m": [0, 0, 1.5]}}],
        **extra,
    })


def best_slots_per_s(tmp_path, num_ant: int, kind: str, extra: dict | None = None) -> tuple[float, str]:
    sc = scenario(*ARRAYS[num_ant], kind, extra)
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    best = max(Simulation(sc, tmp_path / f"{num_ant}_{kind}_{k}").run().slots_per_s for k in range(REPEATS))
    return best, load


def test_abstraction_slots_per_second_with_a_gnb_array(tmp_path):
    Simulation(scenario(*ARRAYS[8], "ideal"), tmp_path / "warm").run()       # imports, first TF ops
    ideal = {}
    for num_ant in ARRAYS:
        ideal[num_ant], load = best_slots_per_s(tmp_path, num_ant, "ideal")
        print(f"\n[bench] {num_ant:2d} gNB antennas {ARRAYS[num_ant]}, ideal CSI: {ideal[num_ant]:8,.0f} UE-slots/s "
              f"(best of {REPEATS}; load average {load})", end="")
    for label, kind, extra in (("type1", "type1", None), ("neural (frozen codec)", "neural", NEURAL),
                               ("ideal, 2 UE antennas, 2 layers", "ideal", TWO_LAYERS),
                               ("type1, 2 UE antennas, max_rank 2", "type1", TWO_LAYERS)):
        other, load = best_slots_per_s(tmp_path, 32, kind, extra)
        print(f"\n[bench] 32 gNB antennas {ARRAYS[32]}, {label}: {other:8,.0f} UE-slots/s "
              f"(best of {REPEATS}; load average {load})", end="")
    print()
    assert ideal[32] >= REQUIRED_SLOTS_PER_S


def test_fading_setup_umi_vs_cdl():
    sc = scenario(*ARRAYS[32], "ideal")
    speed_mps = 30 / 3.6

    def setup(cfg: ChannelConfig, num_slots: int) -> tuple[float, int]:
        """Seconds to build the channel, and its number of paths."""
        t0 = time.perf_counter()
        ch = FadingChannel(cfg, sc.carrier, 1, speed_mps, np.arange(num_slots), 1, gnb=sc.gnb,
                           start_position_m=np.array([50.0, 0.0, 1.5]), velocity_mps=np.array([speed_mps, 0.0, 0.0]))
        seconds = time.perf_counter() - t0
        assert ch.cfr_slot(num_slots - 1).shape == (1, 32, sc.carrier.num_subcarriers)
        return seconds, ch._tau_s.shape[-1]

    for name, cfg in (("umi", ChannelConfig(model="umi")), ("cdl C", sc.channel)):
        setup(cfg, 50)                                                       # imports, first TF ops
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        seconds, num_paths = setup(cfg, SETUP_SLOTS)
        print(f"\n[bench] FadingChannel setup, {name:5s} ({num_paths} paths), 4x8 gNB, {SETUP_SLOTS:,} slots: "
              f"{seconds:5.1f} s (load average {load})", end="")
    print()
