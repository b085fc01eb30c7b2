"""CDL, UMi and UMa generated a chunk at a time (issue 15, item 5): the same realisation as Sionna's
whole-run call, bit for bit, whatever the chunk size, continuous across chunk boundaries, and
Sionna's random generator left as the whole-run call leaves it."""
from __future__ import annotations

import numpy as np
import pytest
import sionna.phy
import tensorflow as tf
from sionna.phy.channel.tr38901 import CDL, UMa, UMi

from simulator.channel.continuous_38901 import ContinuousModel
from simulator.channel.fading import _gnb_array, _ue_array
from simulator.schema import GnbConfig

FS = 2000.0
FC = 3.5e9
N = 1001                                   # not a multiple of the chunks: the last one is short
GNB = GnbConfig(antenna_rows=2, antenna_cols=2, polarization="dual", position_m=[0, 0, 25])


def _model(kind: str):
    ue, bs = _ue_array(2, FC), _gnb_array(GNB, FC)
    if kind.startswith("cdl"):
        return CDL(kind[-1], 100e-9, FC, ue, bs, "downlink", min_speed=8.3, max_speed=8.3)
    cls = UMi if kind == "umi" else UMa
    model = cls(FC, "low", ue, bs, "downlink", enable_pathloss=False, enable_shadow_fading=False)

    def loc(x):
        return tf.constant(np.reshape(np.asarray(x, np.float32), [1, 1, 3]))

    zeros = tf.zeros([1, 1, 3])
    model.set_topology(loc([60, -30, 1.5]), loc([0, 0, 25]), zeros, zeros, loc([0, 8.3, 0]),
                       tf.constant([[False]]), kind == "umi")          # UMi LoS, UMa NLoS
    return model


def _whole(kind: str):
    model = _model(kind)
    return model(N, FS) if kind in ("umi", "uma") else model(1, N, FS)


@pytest.mark.parametrize("kind", ["cdl_C", "cdl_D", "umi", "uma"])      # CDL-D: LoS
def test_chunks_equal_sionnas_whole_run_call_bit_for_bit(kind):
    sionna.phy.config.seed = 5
    a, tau = _whole(kind)[:2]
    after_whole = sionna.phy.config.tf_rng.uniform([4])                   # the generator after the draw
    sionna.phy.config.seed = 5
    model = ContinuousModel(_model(kind))
    for chunk in (64, 192, 4096):
        got = np.concatenate([model(s, min(chunk, N - s), FS)[0].numpy() for s in range(0, N, chunk)], axis=-1)
        assert np.array_equal(got, a.numpy()), chunk
    assert np.array_equal(model(0, 1, FS)[1].numpy(), tau.numpy())
    # the replayed calls leave Sionna's generator where the first call left it
    assert np.array_equal(sionna.phy.config.tf_rng.uniform([4]).numpy(), after_whole.numpy())


def test_a_later_call_draws_the_first_calls_numbers_whatever_was_drawn_between():
    sionna.phy.config.seed = 9
    model = ContinuousModel(_model("cdl_C"))
    first = model(0, 64, FS)[0].numpy()
    sionna.phy.config.tf_rng.normal([1000])                               # someone else draws meanwhile
    assert np.array_equal(model(0, 64, FS)[0].numpy(), first)


def test_only_38901_models_are_accepted():
    from sionna.phy.channel.tr38901 import TDL

    with pytest.raises(TypeError, match="not a Sionna CDL, UMi or UMa model"):
        ContinuousModel(TDL("A", 100e-9, FC))
