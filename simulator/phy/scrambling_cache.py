"""Sionna's 5G scrambling sequences, computed once per (length, c_init) and outside autograph.

Sionna 1.2's ``TB5GScrambler.call`` rebuilds its sequence on every call (it compares
``x.shape[-1]``, an int, with the stored ``TensorShape``, which never compares equal), and the
rebuild runs ``generate_prng_seq``, a Python loop over the 38.211 Gold sequence. Inside a
``tf.function`` autograph converts that loop and runs it operator by operator, so tracing one
chain spent most of its time there (52 PRB, a loaded 2-core machine: the trace of a second MCS
10.2 s -> 2.8 s, tests/benchmarks/bench_chain_trace.py). The sequence depends only on its length
and c_init, so caching it and calling it unconverted changes no bit of any output (checked there).

``install()`` replaces the function in ``sionna.phy.fec.scrambling``'s namespace, the one the
scramblers call; it is idempotent.
"""
from __future__ import annotations

import functools

import numpy as np


def install() -> None:
    import tensorflow as tf
    from sionna.phy.fec import scrambling

    if getattr(scrambling.generate_prng_seq, "_airtune_cached", False):
        return
    original = scrambling.generate_prng_seq

    @functools.lru_cache(maxsize=256)
    def _sequence(length: int, c_init: int) -> np.ndarray:
        seq = original(length, c_init)
        seq.setflags(write=False)              # shared by every caller: read-only
        return seq

    @tf.autograph.experimental.do_not_convert
    def cached(length, c_init):
        return _sequence(int(length), int(c_init))

    cached._airtune_cached = True
    scrambling.generate_prng_seq = cached
