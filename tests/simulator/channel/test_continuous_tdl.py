"""TDL generated a chunk at a time (issue 15, item 5): the same realisation as Sionna's whole-run call,
bit for bit, whatever the chunk size, continuous across chunk boundaries, in bounded memory."""
from __future__ import annotations

import numpy as np
import pytest
import sionna.phy
import tensorflow as tf
from sionna.phy.channel.tr38901 import TDL

import simulator.channel.fading as fading
from simulator.channel.continuous_tdl import ContinuousTDL, path_gains
from simulator.channel.fading import FadingChannel
from simulator.schema import CarrierConfig, ChannelConfig, GnbConfig

FS = 2000.0
N = 3001                                   # not a multiple of the chunks: the last one is short


@pytest.mark.parametrize("profile, rx, tx", [("B", 2, 4), ("D", 1, 1), ("A30", 1, 2)])   # D: LoS (Rician tap)
def test_chunks_equal_sionnas_whole_run_call_bit_for_bit(profile, rx, tx):
    args = (profile, 30e-9 if profile == "A30" else 100e-9, 3.5e9)
    kw = dict(num_sinusoids=20, min_speed=8.3, max_speed=8.3, num_rx_ant=rx, num_tx_ant=tx)
    sionna.phy.config.seed = 11
    a, tau = TDL(*args, **kw)(1, N, FS)
    whole = np.ascontiguousarray(tf.transpose(a[0, 0, :, 0], [3, 0, 1, 2]).numpy())
    sionna.phy.config.seed = 11
    model = ContinuousTDL(*args, **kw)
    model.draw()
    for chunk in (64, 640, 4096):
        got = np.concatenate([path_gains(model, s, min(s + chunk, N), FS) for s in range(0, N, chunk)])
        assert np.array_equal(got, whole), chunk
    assert np.array_equal(model.evaluate(0, 1, FS)[1].numpy().ravel(), tau.numpy().ravel())


def test_fading_channel_is_the_same_whatever_the_chunk_and_the_order(monkeypatch):
    carrier = CarrierConfig(num_prbs=4)
    cfg = ChannelConfig(model="tdl", profile="C", delay_spread_ns=300)
    gnb = GnbConfig(antenna_rows=1, antenna_cols=2)
    slots = np.arange(2000)

    def channel():
        return FadingChannel(cfg, carrier, 1, 30 / 3.6, slots, seed=3, gnb=gnb)

    reference = channel().cfr(slots)                        # default chunk: all 2,000 samples in one
    monkeypatch.setattr(fading, "TDL_CHUNK_BYTES", 64 * 10.2e3 * 2 + 1)   # 64 samples a chunk
    small = channel()
    assert small._tdl_chunk == 64
    order = np.random.default_rng(0).permutation(slots)     # out of order: chunks evicted and regenerated
    got = np.empty_like(reference)
    for k in range(0, len(order), 37):
        got[order[k:k + 37]] = small.cfr(order[k:k + 37])
    assert np.array_equal(got, reference)
    assert len(small._tdl_chunks) <= fading.TDL_CACHED_CHUNKS
    # continuous across a chunk boundary: the step from slot 63 to 64 is like its neighbours' steps
    h = reference[:, 0, 0, 0]
    steps = np.abs(np.diff(h))
    assert steps[63] < 5 * np.median(steps[40:90])
