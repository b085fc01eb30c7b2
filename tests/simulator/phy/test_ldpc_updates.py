"""The decoder's node updates (simulator/phy/ldpc_updates.py) against Sionna's own: the same soft
outputs bit for bit, eagerly and under XLA, for two codes (both base graphs) and noisy inputs that
leave some errors."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")


@pytest.mark.parametrize("k, n", [(1000, 3000), (3800, 5600)])   # base graph 2 and 1
def test_same_bits_as_sionna(k, n):
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

    from simulator.phy.ldpc_updates import cn_update_phi, vn_update_sum

    enc = LDPC5GEncoder(k, n)
    ours = LDPC5GDecoder(enc, hard_out=False, num_iter=8, cn_update=cn_update_phi, vn_update=vn_update_sum)
    theirs = LDPC5GDecoder(enc, hard_out=False, num_iter=8)
    bits = tf.cast(tf.random.stateless_uniform([4, k], seed=[3, 4], maxval=2, dtype=tf.int32), tf.float32)
    code = enc(bits)
    llr = (2 * code - 1) * 1.2 + tf.random.stateless_normal([4, n], seed=[5, 6]) * 1.5   # logits of 1
    assert ((llr.numpy() > 0) != (code.numpy() > 0.5)).mean() > 0.1    # a noisy input: the BP has work to do
    for jit in (False, True):
        a = tf.function(lambda x: ours(x), jit_compile=jit, autograph=False)(llr).numpy()
        b = tf.function(lambda x: theirs(x), jit_compile=jit, autograph=False)(llr).numpy()
        assert a.tobytes() == b.tobytes()
    assert np.isfinite(a).all()
