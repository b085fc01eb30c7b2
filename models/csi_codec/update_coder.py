"""Decoder weight updates: quantisation with straight-through gradients (eq. 12-14), the
spike-and-slab prior (eq. 16-18) or a uniform prior, its discrete push-forward on the bin grid
(eq. 15), the update rate (eq. 19) and range coding with ``constriction``.

Quantiser (after van Rozendaal et al. 2021, the paper's [42]): delta = new - old is mapped to
the index k = clip(round(delta / t), k_min, k_max) and back to k * t. The paper gives N
equispaced bins of width t; it does not say where the grid sits when N is even. Here the grid
always contains 0 (a zero update must be representable, it is what the spike rewards) and has
exactly N levels: k in {-floor(N/2), ..., ceil(N/2) - 1}, symmetric for odd N and with one extra
negative level for even N (N = 2: {-t, 0}). In training, Q(delta) = delta + stop_gradient(
k t - delta): the straight-through estimator dQ/d delta = 1 (eq. 12-14 with [43]).

Prior on delta (eq. 16-18): p(delta) = (alpha * spike(delta) + slab(delta)) / (1 + alpha), with a
narrow spike of scale sigma_spike (default t / 6, so ~99.7 % of a Gaussian spike's mass lies in
the zero bin, as the paper states) and a wide slab of scale sigma_slab; both Gaussian by
default, ``laplace`` makes both Laplace with the same standard deviations. The discrete prior
of bin k is the prior mass of the bin (eq. 15); the edge bins also take the tails beyond them,
because clipping sends those deltas there. Defaults alpha = 1000 and sigma_slab = 0.05 are a
choice (the values in the paper's text did not survive extraction): alpha >> 1 makes zeros
cost ~log2(1 + 1/alpha) bits; a slab wide against t keeps non-zero levels affordable.

The gNB rebuilds its decoder as old + k * t in float32 with ``dequantize``, the same function
the UE uses for its own quantised decoder, so both hold the same bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import constriction
import numpy as np
import tensorflow as tf
from scipy import special

from models.csi_codec.bitstream import bytes_to_words, categorical, words_to_bytes
from models.csi_codec.config import UpdateCodingConfig
from models.csi_codec.entropy import quantize_pmf

LN2 = math.log(2.0)
_MASS_FLOOR = 1e-30          # keeps log2 finite for bins the prior gives (numerically) nothing


@dataclass(frozen=True)
class UpdateQuantizer:
    """N equispaced levels of width t around zero (eq. 12-14).

    indices:      delta [...] float -> k [...] int32 in [k_min, k_max]
    quantize_ste: delta tf.Tensor -> k t with identity gradient (straight-through)
    dequantize:   old [...] float32, k [...] int -> old + k t, float32
    """
    bins: int = 64
    bin_width: float = 0.005

    def __post_init__(self):
        if int(self.bins) != self.bins or self.bins < 2:
            raise ValueError(f"update bins N must be an integer >= 2, got {self.bins}")
        if not (self.bin_width > 0 and math.isfinite(self.bin_width)):
            raise ValueError(f"update bin_width t must be > 0, got {self.bin_width}")

    @property
    def k_min(self) -> int:
        return -(self.bins // 2)

    @property
    def k_max(self) -> int:
        return (self.bins - 1) // 2

    @property
    def levels(self) -> np.ndarray:
        """The k of every bin, [N] int64, ascending."""
        return np.arange(self.k_min, self.k_max + 1)

    def indices(self, delta: np.ndarray) -> np.ndarray:
        k = np.rint(np.asarray(delta, np.float64) / self.bin_width)
        return np.clip(k, self.k_min, self.k_max).astype(np.int32)

    def quantize_ste(self, delta: tf.Tensor) -> tf.Tensor:
        t = tf.constant(self.bin_width, delta.dtype)
        q = tf.clip_by_value(tf.math.round(delta / t), float(self.k_min), float(self.k_max)) * t
        return delta + tf.stop_gradient(q - delta)

    def dequantize(self, old: np.ndarray, k: np.ndarray) -> np.ndarray:
        old = np.asarray(old, np.float32)
        return (old + np.asarray(k, np.float32).reshape(old.shape) * np.float32(self.bin_width)).astype(np.float32)


# -- priors ------------------------------------------------------------------------------------------
def _gauss_cdf_np(x, s):
    return 0.5 * special.erfc(-np.asarray(x, np.float64) / (s * math.sqrt(2.0)))


def _laplace_cdf_np(x, s):
    b = s / math.sqrt(2.0)
    x = np.asarray(x, np.float64)
    return np.where(x < 0, 0.5 * np.exp(x / b), 1.0 - 0.5 * np.exp(-x / b))


def _gauss_cdf_tf(x, s):
    return 0.5 * tf.math.erfc(-x / (s * math.sqrt(2.0)))


def _laplace_cdf_tf(x, s):
    b = s / math.sqrt(2.0)
    # exp of a non-positive argument only, so neither branch overflows
    e = 0.5 * tf.math.exp(-tf.math.abs(x) / b)
    return tf.where(x < 0, e, 1.0 - e)


@dataclass(frozen=True)
class SpikeSlabPrior:
    """p(delta) = (alpha * spike(delta; sigma_spike) + slab(delta; sigma_slab)) / (1 + alpha), eq. 16-18.

    sigma_spike None means t / 6 of the quantiser it is used with.
    """
    alpha: float = 1000.0
    sigma_slab: float = 0.05
    sigma_spike: float | None = None
    kind: Literal["gaussian", "laplace"] = "gaussian"

    def __post_init__(self):
        if not self.alpha >= 0:
            raise ValueError(f"spike-and-slab alpha must be >= 0, got {self.alpha}")
        if not self.sigma_slab > 0:
            raise ValueError(f"sigma_slab must be > 0, got {self.sigma_slab}")
        if self.sigma_spike is not None and not self.sigma_spike > 0:
            raise ValueError(f"sigma_spike must be > 0, got {self.sigma_spike}")
        if self.kind not in ("gaussian", "laplace"):
            raise ValueError(f"spike-and-slab kind must be 'gaussian' or 'laplace', got {self.kind!r}")

    def _spike(self, q: UpdateQuantizer) -> float:
        return self.sigma_spike if self.sigma_spike is not None else q.bin_width / 6.0

    def cdf(self, x: np.ndarray, q: UpdateQuantizer) -> np.ndarray:
        """Continuous cumulative of the mixture, float64."""
        f = _gauss_cdf_np if self.kind == "gaussian" else _laplace_cdf_np
        return (self.alpha * f(x, self._spike(q)) + f(x, self.sigma_slab)) / (1.0 + self.alpha)

    def pmf(self, q: UpdateQuantizer) -> np.ndarray:
        """Discrete prior of the N bins (eq. 15), [N] float64 summing to 1; edge bins take the tails."""
        k = q.levels.astype(np.float64)
        upper = np.append(self.cdf((k[:-1] + 0.5) * q.bin_width, q), 1.0)
        lower = np.insert(self.cdf((k[1:] - 0.5) * q.bin_width, q), 0, 0.0)
        return np.maximum(upper - lower, 0.0)

    def bits_tf(self, delta_q: tf.Tensor, q: UpdateQuantizer) -> tf.Tensor:
        """Differentiable update rate in bits (eq. 19): sum of -log2 of the prior mass of the bin
        around each quantised delta ``delta_q`` (from ``quantize_ste``; its gradient reaches the
        un-quantised weights through the straight-through estimator). Edge bins include their
        tails, so the value equals the discrete rate of ``pmf``."""
        f = _gauss_cdf_tf if self.kind == "gaussian" else _laplace_cdf_tf
        t = q.bin_width
        lo, hi = delta_q - 0.5 * t, delta_q + 0.5 * t
        is_min = delta_q <= (q.k_min + 0.5) * t                        # edge bins take the tails
        is_max = delta_q >= (q.k_max - 0.5) * t
        pos = delta_q > 0
        one, zero = tf.ones_like(delta_q), tf.zeros_like(delta_q)

        def mass(s):
            # F(hi) - F(lo) for delta <= 0; for delta > 0 the same mass as S(lo) - S(hi) with
            # S(x) = 1 - F(x) = F(-x) (symmetric prior), so it is never a difference of two
            # numbers close to 1
            upper = tf.where(pos, tf.where(is_min, one, f(-lo, s)), tf.where(is_max, one, f(hi, s)))
            lower = tf.where(pos, tf.where(is_max, zero, f(-hi, s)), tf.where(is_min, zero, f(lo, s)))
            return upper - lower

        p = (self.alpha * mass(self._spike(q)) + mass(self.sigma_slab)) / (1.0 + self.alpha)
        return tf.reduce_sum(-tf.math.log(tf.maximum(p, _MASS_FLOOR))) / LN2


@dataclass(frozen=True)
class UniformPrior:
    """Every one of the N bins equally likely: log2 N bits per weight, whatever the update
    (the paper's FM-UP ablation). ``bits_tf`` has no gradient."""

    def pmf(self, q: UpdateQuantizer) -> np.ndarray:
        return np.full(q.bins, 1.0 / q.bins)

    def bits_tf(self, delta_q: tf.Tensor, q: UpdateQuantizer) -> tf.Tensor:
        n = tf.cast(tf.size(delta_q), delta_q.dtype)
        return tf.stop_gradient(n * math.log2(q.bins))


Prior = SpikeSlabPrior | UniformPrior


def make_prior(name: str, **kwargs) -> Prior:
    """``spike_slab`` (keyword args of SpikeSlabPrior) or ``uniform``."""
    if name == "spike_slab":
        return SpikeSlabPrior(**kwargs)
    if name == "uniform":
        if kwargs:
            raise ValueError(f"the uniform prior takes no parameters, got {sorted(kwargs)}")
        return UniformPrior()
    raise ValueError(f"unknown update prior {name!r}; valid: spike_slab, uniform")


# -- coding ------------------------------------------------------------------------------------------
@dataclass
class CodedUpdate:
    """A decoder update as sent on the feedback link, and what the UE knows about it."""
    data: bytes
    num_weights: int
    nonzero: int                      # updates with k != 0
    estimated_bits: float             # eq. 19 under the float prior (the model's estimate)
    quantized: list[np.ndarray]       # the UE's quantised decoder weights, old + k t

    @property
    def bits(self) -> int:
        return 8 * len(self.data)


class UpdateCoder:
    """Range codes quantised decoder-weight deltas under a discrete prior.

    encode: old [list of arrays], new [same shapes] -> CodedUpdate (the UE)
    decode: old [list of arrays], bytes -> new weights [same shapes], float32 (the gNB)
    The weights are flattened in list order; both sides must pass them in the same order.
    """

    def __init__(self, quantizer: UpdateQuantizer, prior: Prior, precision: int = 24):
        self.quantizer = quantizer
        self.prior = prior
        self.pmf = prior.pmf(quantizer)
        self.counts = quantize_pmf(self.pmf, precision)
        self.model = categorical(self.counts)

    def estimated_bits(self, k: np.ndarray) -> float:
        """Eq. 19 for indices ``k`` under the float prior."""
        p = self.pmf[np.asarray(k, np.int64).reshape(-1) - self.quantizer.k_min]
        return float(-np.sum(np.log2(np.maximum(p, _MASS_FLOOR))))

    def encode(self, old: Sequence[np.ndarray], new: Sequence[np.ndarray]) -> CodedUpdate:
        if len(old) != len(new):
            raise ValueError(f"old and new weight lists differ in length: {len(old)} vs {len(new)}")
        ks = []
        for i, (o, n) in enumerate(zip(old, new)):
            o, n = np.asarray(o, np.float32), np.asarray(n, np.float32)
            if o.shape != n.shape:
                raise ValueError(f"weight {i}: old shape {o.shape} != new shape {n.shape}")
            ks.append(self.quantizer.indices(n.astype(np.float64) - o.astype(np.float64)))
        k = np.concatenate([x.reshape(-1) for x in ks]) if ks else np.zeros(0, np.int32)
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode((k - self.quantizer.k_min).astype(np.int32), self.model)
        quantized = [self.quantizer.dequantize(o, kk) for o, kk in zip(old, ks)]
        return CodedUpdate(words_to_bytes(enc.get_compressed()), int(k.size), int(np.count_nonzero(k)),
                           self.estimated_bits(k), quantized)

    def decode(self, old: Sequence[np.ndarray], data: bytes) -> list[np.ndarray]:
        sizes = [int(np.size(o)) for o in old]
        dec = constriction.stream.queue.RangeDecoder(bytes_to_words(data))
        k = dec.decode(self.model, sum(sizes)).astype(np.int64) + self.quantizer.k_min
        out, start = [], 0
        for o, n in zip(old, sizes):
            out.append(self.quantizer.dequantize(o, k[start:start + n]))
            start += n
        return out


def make_update_coder(update: UpdateCodingConfig) -> UpdateCoder:
    """An ``UpdateCoder`` with ``update``'s quantiser and prior (``alpha`` and ``sigma_slab`` are
    the spike-and-slab's; the uniform prior takes none).

    encode: old [weights], new [weights] -> CodedUpdate (sender: bytes, bits, quantised weights)
    decode: old [weights], bytes -> new weights, float32 (receiver)
    """
    q = UpdateQuantizer(update.bins, update.bin_width)
    kwargs = {"alpha": update.alpha, "sigma_slab": update.sigma_slab} if update.prior == "spike_slab" else {}
    return UpdateCoder(q, make_prior(update.prior, **kwargs))
