"""MU-MIMO precoding cost: K co-scheduled UEs, 32 gNB antennas, 52 PRB (624 subcarriers), subbands of
4 PRB (13), one thread.

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_mu_precoding.py
Requirement (issue 13, item 6): the 8-UE, 32-antenna, 52-PRB PF cell at >= 2,000 cell-slots/s, so
500 us per slot for everything. Per slot: ``precoded_channels`` + ``mu_sinr`` of the set on the true
channels (complex64, as the sources give them). Per set of UEs (a report, or a new co-scheduled set):
``effective_rows`` + ``rzf_precoder`` on 13 subbands; ``held_gain`` once per UE and report. Figures are
the best of ``REPEATS`` means of ``CALLS`` calls (``bench_precoding.best_us``), with the load average.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from simulator.phy.mu_precoding import effective_rows, held_gain, mu_sinr, precoded_channels, rzf_precoder
from simulator.phy.precoding import dominant_precoder
from simulator.threads import limit_threads
from tests.benchmarks.bench_precoding import NUM_SC, SB_PRBS, SUBBAND_OF_SC, best_us, channel

pytestmark = pytest.mark.benchmark
GNB_ANT, SNR_DB = 32, 10.0
SUBBAND_SC = 12 * SB_PRBS


def channels(num_ues: int, ue_ant: int) -> np.ndarray:
    """[K, ue_ant, 32, 624] complex64 i.i.d. Rayleigh (``bench_precoding.channel``'s, K * ue_ant rows)."""
    return channel(GNB_ANT, num_ues * ue_ant).reshape(num_ues, ue_ant, GNB_ANT, NUM_SC)


@pytest.mark.parametrize("ue_ant", [1, 2])
@pytest.mark.parametrize("num_ues", [1, 2, 4, 8])
def test_mu_precoding_cost(num_ues, ue_ant):
    limit_threads(1)
    h = channels(num_ues, ue_ant)
    w_dir = dominant_precoder(h, SUBBAND_OF_SC)                              # [K, 13, 32], at report arrival
    gain = held_gain(h, w_dir, SUBBAND_SC)
    w = rzf_precoder(effective_rows(w_dir, gain), SNR_DB)
    snr_db = np.full(num_ues, SNR_DB)
    load = os.getloadavg()[0]
    gain_us = best_us(lambda: held_gain(h[0], w_dir[0], SUBBAND_SC))
    build_us = best_us(lambda: rzf_precoder(effective_rows(w_dir, gain), snr_db))
    channels_us = best_us(lambda: precoded_channels(h, w, SUBBAND_SC))
    g = precoded_channels(h, w, SUBBAND_SC)
    sinr_us = best_us(lambda: mu_sinr(g, snr_db))
    per_slot_us = channels_us + sinr_us
    print(f"\n[bench] MU precoding K={num_ues}, {ue_ant}x{GNB_ANT}, {NUM_SC} sc, 13 subbands, 1 thread "
          f"(load {load:.2f}): per slot {per_slot_us:.0f} us (precoded_channels {channels_us:.0f}, mu_sinr "
          f"{sinr_us:.0f}), {per_slot_us / num_ues:.0f} us per UE; building W (effective_rows + rzf_precoder) "
          f"{build_us:.0f} us per set; held_gain {gain_us:.0f} us per UE and report")
    if num_ues <= 4 and ue_ant == 1:          # item 6's cell: up to 4 UEs per PRB, 500 us per slot for everything
        assert per_slot_us + build_us < 250.0


def test_sionna_rzf_call_cost():
    """For comparison (the module docstring's reason for numpy): Sionna's ``rzf_precoding_matrix`` on
    [13, 4, 32], eager and in a ``tf.function``."""
    limit_threads(1)
    import tensorflow as tf
    from sionna.phy.mimo import rzf_precoding_matrix

    h = channels(4, 1)
    w_dir = dominant_precoder(h, SUBBAND_OF_SC)
    rows = effective_rows(w_dir, held_gain(h, w_dir, SUBBAND_SC))
    graph = tf.function(lambda r: rzf_precoding_matrix(r, alpha=0.4, precision="double"))
    load = os.getloadavg()[0]
    eager_us = best_us(lambda: rzf_precoding_matrix(rows, alpha=0.4, precision="double").numpy())
    graph_us = best_us(lambda: graph(rows).numpy())
    numpy_us = best_us(lambda: rzf_precoder(rows, SNR_DB))
    print(f"\n[bench] rzf on [13, 4, 32] (load {load:.2f}): sionna eager {eager_us:,.0f} us, tf.function "
          f"{graph_us:,.0f} us, numpy rzf_precoder {numpy_us:.0f} us per call")
