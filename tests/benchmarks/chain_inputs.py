"""The batch the chain benchmarks feed a link-level chain (imported by their subprocess arms)."""
from __future__ import annotations

import numpy as np


def chain_batch(ch, n: int = 8) -> tuple:
    """(seeds [n, 6] int64, h [n, 1, sc] ones, noise [n] 0.3, previous LLRs [n, coded bits] zeros)."""
    seeds = np.stack([np.full(n, 7), np.zeros(n), np.arange(n), np.ones(n), np.arange(n), np.zeros(n)], 1).astype(np.int64)
    h = np.ones((n, 1, ch.num_subcarriers), np.complex64)
    return seeds, h, np.full(n, 0.3, np.float32), np.zeros((n, ch.num_coded_bits), np.float32)
