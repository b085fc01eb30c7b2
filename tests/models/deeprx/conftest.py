"""Tiny DeepRx configurations and random resource-grid batches for the deeprx tests."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.deeprx.model import DeepRx, DeepRxConfig, loss_mask, make_features

# 425 parameters: small enough for an exact Hessian, still input conv + 2 dilated blocks (one widening)
TINY = dict(num_rx_ant=1, max_bits_per_symbol=2, input_filters=3, blocks=((3, 1, 1), (4, 2, 2)))
PILOT_SYMBOL = 1
# a tiny link-level data config: one MCS (16-QAM) and 2 PRB keep the chain build short
TINY_DATA = dict(num_prbs=2, mcs=(12,), channels=("tdl:A", "cdl:C"), num_samples=5, shard_size=3, seed=4)


def random_batch(rng: np.random.Generator, n: int, cfg: DeepRxConfig, num_sym: int = 4, num_sc: int = 6) -> dict:
    """Random received grids with one DMRS symbol (QPSK on even subcarriers, odd ones empty), random
    bits, modulation orders 1..max_bits_per_symbol: {"x", "bits", "mask"} in the model dtype."""
    a = cfg.num_rx_ant
    y = (rng.standard_normal((n, a, num_sym, num_sc)) + 1j * rng.standard_normal((n, a, num_sym, num_sc))) / np.sqrt(2)
    pilots = np.zeros((n, num_sym, num_sc), np.complex64)
    qpsk = (rng.choice([-1.0, 1.0], (n, num_sc // 2)) + 1j * rng.choice([-1.0, 1.0], (n, num_sc // 2))) / np.sqrt(2)
    pilots[:, PILOT_SYMBOL, 0::2] = qpsk
    no = 10 ** (-rng.uniform(0, 20, n) / 10)
    data_re = np.ones((n, num_sym, num_sc), bool)
    data_re[:, PILOT_SYMBOL] = False
    bps = rng.integers(1, cfg.max_bits_per_symbol + 1, n)
    bits = rng.integers(0, 2, (n, num_sym, num_sc, cfg.max_bits_per_symbol))
    return {"x": make_features(y.astype(np.complex64), pilots, no.astype(np.float32), cfg.dtype),
            "bits": tf.constant(bits, cfg.dtype),
            "mask": loss_mask(data_re, bps, cfg.max_bits_per_symbol, cfg.dtype)}


@pytest.fixture(scope="module")
def tiny64():
    """A tiny float64 DeepRx."""
    return DeepRx(DeepRxConfig(**TINY, dtype="float64"), seed=0)
