"""eType II report computation: the UE's PMI search, the gNB's precoder and the 38.212 bit count, per
UE-report, on UMi NLoS channels of a 4x8 single-polarised array (32 ports), 52 PRB in 13 subbands,
one UE antenna, one thread.

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_etype2.py
Requirement (issue 14, item 5): <= 1 ms per UE-report on 2 cores. Each figure is the mean of
``CsiReporter.measure`` over 200 occasions of one drive (the path-domain subband covariances, the
eigenvectors, the beam and basis selection, quantisation, the precoder and the bits; the CQI and
the logged precoder quality, which every report kind pays, are not in it), best of ``REPEATS``, with
the load average before the first, and the reports' mean SGCS to the measured channel's dominant
eigenvectors and their bits beyond the CQI.
Measured (2 cores, idle; load average falling from 2.6): paramCombination 1 / 4 / 8: 0.43 / 0.43 /
0.43 ms per report, mean SGCS 0.64 / 0.83 / 0.89 at 38 / 99 / 168 bits beyond the CQI; Type I on
the same channels 1.03 ms (its search on one row per PRB of the full response), SGCS 0.51 at 9 bits.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from simulator.threads import limit_threads

limit_threads(1)

from simulator.channel.fading import FadingChannel  # noqa: E402
from simulator.csi.report import CsiReporter, precoder_quality  # noqa: E402
from simulator.schema import CarrierConfig, ChannelConfig, CsiReportConfig, GnbConfig  # noqa: E402

pytestmark = pytest.mark.benchmark
REPEATS = 3
OCCASIONS = 200
REQUIRED_MS = 1.0


def test_etype2_report_ms():
    gnb = GnbConfig(antenna_rows=4, antenna_cols=8)
    carrier = CarrierConfig(subcarrier_spacing_khz=30, num_prbs=52, carrier_frequency_ghz=3.5)
    ch = FadingChannel(ChannelConfig(model="umi", los=False), carrier, 1, 10.0, np.arange(OCCASIONS), seed=5, gnb=gnb,
                       start_position_m=np.array([60.0, 30.0, 1.5]), velocity_mps=np.array([0.0, 10.0, 0.0]))
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    figures = {}
    for name, cfg in [(f"etype2 paramCombination {pc}", CsiReportConfig(kind="etype2", param_combination=pc))
                      for pc in (1, 4, 8)] + [("type1", CsiReportConfig(kind="type1"))]:
        rep = CsiReporter(cfg, gnb, 52)
        rep.measure(ch, 0, 10.0)                                  # caches: kernels, beams
        best = np.inf
        for _ in range(REPEATS):
            t = time.perf_counter()
            for slot in range(OCCASIONS):
                rep.measure(ch, slot, 10.0)
            best = min(best, (time.perf_counter() - t) / OCCASIONS * 1e3)
        figures[name] = best
        reports = [rep.measure(ch, slot, 10.0) for slot in range(OCCASIONS)]
        sg = np.mean([precoder_quality(m)[0] for m in reports])
        bits = np.mean([m.bits for m in reports])
        print(f"\n[bench] {name}: {best:.3f} ms per UE-report (4x8, 52 PRB, 13 subbands; best of {REPEATS}; "
              f"load average {load}); mean SGCS {sg:.3f}, {bits:.0f} bits beyond the CQI", end="")
    print()
    assert all(v <= REQUIRED_MS for k, v in figures.items() if k.startswith("etype2"))
