"""TDL generated a chunk at a time (issue 15, item 5): the same realisation as Sionna's whole-run call,
bit for bit, whatever the chunk size (FadingChannel's chunks: test_fading_chunks)."""
from __future__ import annotations

import numpy as np
import pytest
import sionna.phy
import tensorflow as tf
from sionna.phy.channel.tr38901 import TDL

from simulator.channel.continuous_tdl import ContinuousTDL, path_gains

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
