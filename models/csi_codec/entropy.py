"""A fully factorised learned density for the quantised latent (DeepFactorized, Ballé et al. 2018).

Written here because ``tensorflow-compression`` does not load on TF 2.21 (see FIELD-NOTES).
It follows Ballé, Minnen, Singh, Hwang, Johnston, "Variational image compression with a scale
hyperprior" (ICLR 2018), appendix 6.1: for each latent channel c an independent univariate
density whose cumulative is a small monotone network

    c(x) = sigmoid(f_K(... f_1(x))),   f_k(x) = g_k(H_k x + b_k),
    g_k(x) = x + tanh(a_k) * tanh(x)   (k < K),   g_K = identity,

with H_k = softplus(raw H_k) >= 0 and |tanh(a_k)| < 1, so c is non-decreasing in x and goes
from 0 to 1. Default filters (3, 3, 3) and init_scale 10 as in the paper's reference code.

Rate (eq. 4-5 of the CSI paper): in training the latent gets i.i.d. U(-1/2, 1/2) noise and the
likelihood of each element is the mass of the unit bin around it, c(y + 1/2) - c(y - 1/2); at
inference the latent is rounded to integers (unit bins) and the same expression is the
probability of the integer symbol. The model's bit estimate is -log2 of that likelihood.

For range coding, ``probability_tables`` turns the density of each channel into an integer
frequency table over a finite range of integers [min_c, max_c] plus one overflow (escape)
symbol that carries the mass outside it; ``bitstream.py`` codes the escaped values separately.

Shapes: latents are [batch, height, width, channels] (channels last, as the conv codec makes
them); the density evaluates a [channels, 1, n] layout internally.
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from models.csi_codec.layout import entropy_shapes

LIKELIHOOD_BOUND = 1e-9          # likelihood floor in training (keeps -log2 finite)
MAX_TABLE_SYMBOLS = 1 << 16      # widest in-range alphabet per channel; the rest escapes
_BISECTION_STEPS = 80
# Tables already computed, by the entropy model's parameter bytes: a refresh after an update, the
# gNB switching to an old decoder for a late report and back, and the UEs and gNB sides loading one
# checkpoint would otherwise each repeat ~0.9 s of bisection for tables it has made before
_TABLE_CACHE: OrderedDict[tuple, "ProbabilityTables"] = OrderedDict()
_TABLE_CACHE_SIZE = 64


@tf.custom_gradient
def _lower_bound(x: tf.Tensor, bound: float):
    """max(x, bound), letting gradients through where they would lift x back above the bound.

    Plain ``tf.maximum`` would cut the gradient of every likelihood that underflowed, so a
    badly initialised density could never recover; this is the ``lower_bound`` op of the
    reference implementation (tensorflow-compression), written out.
    """
    y = tf.maximum(x, bound)

    def grad(dy):
        pass_through = tf.logical_or(x >= bound, dy < 0)
        return tf.where(pass_through, dy, tf.zeros_like(dy)), None

    return y, grad


class DeepFactorized(tf.Module):
    """Per-channel univariate densities with a learned monotone cumulative (Ballé 2018).

    likelihood:  y [batch, h, w, channels] float32 -> [batch, h, w, channels] float32 in (0, 1]
                 (mass of the unit bin centred on each value)
    bits:        y [batch, h, w, channels] -> [batch] float32, sum of -log2 likelihood per sample
    cdf:         x [channels, n] float32 -> [channels, n] float32 in [0, 1]
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0,
                 rng: np.random.Generator | None = None, name: str = "deep_factorized"):
        super().__init__(name=name)
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if init_scale <= 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale}")
        rng = rng if rng is not None else np.random.default_rng(0)
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        scale = self.init_scale ** (1.0 / (len(self.filters) + 1))
        self.matrices, self.biases, self.factors = [], [], []
        for name, shape in entropy_shapes(channels, self.filters):       # in order: matrix, bias, factor
            if name.startswith("matrix"):
                # softplus(raw) = 1 / scale / fan_out at init: the stacked layers then spread the
                # initial density over roughly +-init_scale
                raw = np.log(np.expm1(1.0 / scale / shape[1]))
                self.matrices.append(tf.Variable(np.full(shape, raw, np.float32), name=name))
            elif name.startswith("bias"):
                self.biases.append(tf.Variable(rng.uniform(-0.5, 0.5, shape).astype(np.float32), name=name))
            else:
                self.factors.append(tf.Variable(np.zeros(shape, np.float32), name=name))

    # -- parameters -------------------------------------------------------------------------------
    @property
    def parameters(self) -> list[tf.Variable]:
        """All variables in a fixed order: matrix_0, bias_0, factor_0, ..., matrix_K, bias_K."""
        out = []
        for i in range(len(self.matrices)):
            out += [self.matrices[i], self.biases[i]]
            if i < len(self.factors):
                out.append(self.factors[i])
        return out

    def _split(self, params):
        """(matrices, biases, factors) from a flat list ordered like ``parameters``."""
        params = list(self.parameters if params is None else params)
        mats, bias, fac = [], [], []
        for i in range(len(self.matrices)):
            mats.append(params.pop(0))
            bias.append(params.pop(0))
            if i < len(self.factors):
                fac.append(params.pop(0))
        return mats, bias, fac

    # -- the density ------------------------------------------------------------------------------
    def logits_cumulative(self, x: tf.Tensor, params=None) -> tf.Tensor:
        """x [channels, 1, n] -> logit of the cumulative, [channels, 1, n]. ``params`` (same order
        as ``parameters``) replaces the module's variables, e.g. quantised fine-tuned weights."""
        mats, bias, fac = self._split(params)
        h = x
        for i in range(len(mats)):
            h = tf.linalg.matmul(tf.nn.softplus(mats[i]), h) + bias[i]
            if i < len(fac):
                h = h + tf.math.tanh(fac[i]) * tf.math.tanh(h)
        return h

    def cdf(self, x: tf.Tensor, params=None) -> tf.Tensor:
        """x [channels, n] -> cumulative [channels, n]."""
        x = tf.convert_to_tensor(x, tf.float32)
        return tf.math.sigmoid(self.logits_cumulative(x[:, None, :], params))[:, 0, :]

    def _to_channel_major(self, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        y = tf.convert_to_tensor(y, tf.float32)
        perm = tf.concat([[tf.rank(y) - 1], tf.range(tf.rank(y) - 1)], axis=0)
        yt = tf.transpose(y, perm)                                     # [C, batch, h, w]
        return tf.reshape(yt, [self.channels, 1, -1]), tf.shape(yt)

    def likelihood(self, y: tf.Tensor, params=None, bound: bool = True) -> tf.Tensor:
        """y [..., channels] -> unit-bin mass c(y + 1/2) - c(y - 1/2), same shape."""
        flat, shape_t = self._to_channel_major(y)
        lower = self.logits_cumulative(flat - 0.5, params)
        upper = self.logits_cumulative(flat + 0.5, params)
        # evaluate in the tail where the sigmoid is far from 1, so 1 - 1 cannot cancel
        sign = -tf.math.sign(lower + upper)
        sign = tf.where(sign == 0, tf.ones_like(sign), sign)
        lik = tf.math.abs(tf.math.sigmoid(sign * upper) - tf.math.sigmoid(sign * lower))
        if bound:
            lik = _lower_bound(lik, LIKELIHOOD_BOUND)
        lik = tf.reshape(lik, shape_t)
        rank = tf.rank(lik)
        perm = tf.concat([tf.range(1, rank), [0]], axis=0)
        return tf.transpose(lik, perm)

    def bits(self, y: tf.Tensor, params=None) -> tf.Tensor:
        """y [batch, ...,  channels] -> [batch] bits, -log2 of the likelihood summed per sample."""
        lik = self.likelihood(y, params)
        per = -tf.math.log(lik) / np.log(2.0)
        return tf.reduce_sum(tf.reshape(per, [tf.shape(per)[0], -1]), axis=1)

    # -- tables for the range coder ----------------------------------------------------------------
    def quantile(self, q: float, params=None, bracket: float = 1.0) -> np.ndarray:
        """The q-quantile of every channel, [channels] float64, by bisection on the monotone
        cumulative (the reference code learns these with an auxiliary loss; bisection is exact
        to float32 resolution and needs no training)."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile q must be in (0, 1), got {q}")
        target = np.log(q) - np.log1p(-q)                              # logit(q)

        def logit(x: np.ndarray) -> np.ndarray:
            t = tf.constant(x.reshape(self.channels, 1, 1), tf.float32)
            return self.logits_cumulative(t, params).numpy().reshape(self.channels).astype(np.float64)

        lo = np.full(self.channels, -bracket)
        hi = np.full(self.channels, bracket)
        for _ in range(200):                                           # widen until it brackets
            bad_lo, bad_hi = logit(lo) > target, logit(hi) < target
            if not (bad_lo.any() or bad_hi.any()):
                break
            lo = np.where(bad_lo, 2 * lo, lo)
            hi = np.where(bad_hi, 2 * hi, hi)
        else:
            raise FloatingPointError(f"could not bracket the {q}-quantile of the density")
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            below = logit(mid) < target
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def probability_tables(self, tail_mass: float = 1e-9, precision: int = 24, params=None) -> "ProbabilityTables":
        """Integer frequency tables per channel for range coding (see ``ProbabilityTables``).

        The in-range integers of channel c are those between floor(q_c(tail/2)) and
        ceil(q_c(1 - tail/2)), at most ``MAX_TABLE_SYMBOLS`` of them around the median; every
        other value is an escape, whose symbol gets the mass outside the range.

        Tables are a function of the parameter values alone, so they are kept by their bytes
        (``_TABLE_CACHE``): equal parameters return the same (read-only) tables without
        recomputing them.
        """
        values = [np.asarray(p) for p in (self.parameters if params is None else params)]
        digest = hashlib.sha256()
        for v in values:
            digest.update(f"{v.dtype}{v.shape}".encode())
            digest.update(np.ascontiguousarray(v).tobytes())
        key = (digest.digest(), float(tail_mass), int(precision))
        tables = _TABLE_CACHE.get(key)
        if tables is None:
            tables = self._probability_tables(tail_mass, precision, params)
            _TABLE_CACHE[key] = tables
            if len(_TABLE_CACHE) > _TABLE_CACHE_SIZE:
                _TABLE_CACHE.popitem(last=False)
        else:
            _TABLE_CACHE.move_to_end(key)
        return tables

    def _probability_tables(self, tail_mass: float, precision: int, params) -> "ProbabilityTables":
        lower = np.floor(self.quantile(tail_mass / 2, params))
        upper = np.ceil(self.quantile(1 - tail_mass / 2, params))
        median = np.round(self.quantile(0.5, params))
        half = MAX_TABLE_SYMBOLS // 2 - 1
        lower = np.maximum(lower, median - half).astype(np.int64)
        upper = np.minimum(upper, median + half).astype(np.int64)
        counts = []
        for c in range(self.channels):
            ints = np.arange(lower[c], upper[c] + 1, dtype=np.float32)
            edges = np.concatenate([ints - 0.5, [ints[-1] + 0.5]])
            logits = np.zeros((self.channels, 1, len(edges)), np.float32)
            logits[c, 0] = edges
            lg = self.logits_cumulative(tf.constant(logits), params).numpy()[c, 0].astype(np.float64)
            # bin masses as differences of the cumulative, taken on the side of the median where
            # it is small (same trick as ``likelihood``); float64 from here on
            lo_cdf, hi_cdf = _sigmoid(lg), _sigmoid(-lg)               # c(edge), 1 - c(edge)
            pmf = np.where(lg[:-1] + lg[1:] < 0, lo_cdf[1:] - lo_cdf[:-1], hi_cdf[:-1] - hi_cdf[1:])
            overflow = lo_cdf[0] + hi_cdf[-1]
            counts.append(quantize_pmf(np.append(np.maximum(pmf, 0.0), overflow), precision))
        minima = lower.astype(np.int32)
        for a in [minima, *counts]:
            a.setflags(write=False)                  # shared through the cache: nobody may change them
        return ProbabilityTables(minima=minima, counts=tuple(counts), precision=precision)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def quantize_pmf(pmf: np.ndarray, precision: int) -> np.ndarray:
    """A PMF [n] -> integer frequencies [n] int64, each >= 1, summing to exactly 2**precision.

    Every symbol keeps at least one count so any symbol can be coded; the remaining counts are
    shared in proportion to ``pmf`` (floor), and the leftover goes to the largest fractional parts
    (ties to the lower index), so the table depends only on ``pmf``, deterministically.
    """
    pmf = np.asarray(pmf, np.float64)
    n = pmf.size
    total = 1 << int(precision)
    if n < 2 or n > total // 2:
        raise ValueError(f"a table needs 2 <= n <= 2**(precision-1) symbols, got n={n}, precision={precision}")
    if not np.all(np.isfinite(pmf)) or np.any(pmf < 0) or pmf.sum() <= 0:
        raise ValueError("pmf must be finite, non-negative and not all zero")
    share = pmf / pmf.sum() * (total - n)
    counts = 1 + np.floor(share).astype(np.int64)
    left = total - int(counts.sum())
    order = np.lexsort((np.arange(n), -(share - np.floor(share))))   # largest fraction first
    counts[order[:left]] += 1
    return counts


@dataclass(frozen=True)
class ProbabilityTables:
    """What the UE's encoder and the gNB's decoder both derive from the entropy model.

    minima:  [channels] int32; symbol index i of channel c stands for the integer minima[c] + i
    counts:  per channel an int64 array [L_c + 1] summing to 2**precision; index L_c is the
             escape (overflow) symbol for integers outside [minima[c], minima[c] + L_c - 1]
    """
    minima: np.ndarray
    counts: tuple[np.ndarray, ...]
    precision: int

    @property
    def channels(self) -> int:
        return len(self.counts)

    def sizes(self) -> np.ndarray:
        """In-range alphabet size L_c per channel, [channels]."""
        return np.array([len(c) - 1 for c in self.counts], np.int64)

    def ideal_bits(self, symbols: np.ndarray) -> float:
        """-log2 of the table probabilities of integer latents [..., channels] (escape payloads
        not included): the rate the range coder targets."""
        symbols = np.asarray(symbols)
        total = 0.0
        for c, counts in enumerate(self.counts):
            idx = symbols[..., c].astype(np.int64) - int(self.minima[c])
            idx = np.where((idx < 0) | (idx >= len(counts) - 1), len(counts) - 1, idx)
            total += float(np.sum(self.precision - np.log2(counts[idx])))
        return total
