"""The batch the chain benchmarks feed a link-level chain (imported by their subprocess arms)."""
from __future__ import annotations

import numpy as np


def chain_batch(ch, n: int = 8) -> tuple:
    """(seeds [n, 6] int64, h [n, 1, sc] ones, noise [n] 0.3, previous LLRs [n, coded bits] zeros)."""
    seeds = np.stack([np.full(n, 7), np.zeros(n), np.arange(n), np.ones(n), np.arange(n), np.zeros(n)], 1).astype(np.int64)
    h = np.ones((n, 1, ch.num_subcarriers), np.complex64)
    return seeds, h, np.full(n, 0.3, np.float32), np.zeros((n, ch.num_coded_bits), np.float32)


def one_program(ch, tf, autograph: bool = False):
    """An LMMSE chain's encoder, link and decoder in one XLA program, as the chain was compiled before
    its link was shared per modulation order: a callable on ``chain_batch``'s arrays returning
    (ack, ber, sinr_eff_db, llr) numpy, and its ``tf.function`` (trace it with ``get_concrete_function``)."""
    def run(seeds, h, no, prev, beta):
        bits, w = ch._draw(seeds)
        c = ch._encode(bits)
        llr, ber, eesm = ch._link_lmmse(c, w, h, no, beta)
        crc, comb = ch._decode(llr, prev)
        return crc, ber, eesm, comb

    spec = [tf.TensorSpec([None, 6], tf.int64), tf.TensorSpec([None, *ch.h_shape], tf.complex64),
            tf.TensorSpec([None], tf.float32), tf.TensorSpec([None, ch.num_coded_bits], tf.float32),
            tf.TensorSpec([], tf.float32)]
    fn = tf.function(run, jit_compile=True, autograph=autograph, input_signature=spec)

    def call(seeds, h, no, prev):
        out = fn(tf.constant(seeds), tf.constant(h), tf.constant(no), tf.constant(prev), tf.constant(ch.beta, tf.float32))
        return tuple(o.numpy() for o in out)

    return call, fn
