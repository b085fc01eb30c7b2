"""Influence functions via Arnoldi (Schioppa et al. 2022, "Scaling up influence functions"), as
seeds/000 applies them to DeepRx. Model-agnostic: everything takes a per-sample loss
``loss(params: list[Tensor], batch: dict) -> [batch]`` and a parameter list.

Definitions (g_i = grad_theta loss(z_i), H = Hessian of the mean loss over a fixed Hessian
subset, H^-1 ~= U diag(1 / lambda_eff) U^T on the top-k eigenpairs, see ``EigenBasis``):

  classic(t, i)        = -g_t^T H^-1 g_i      negative: upweighting z_i lowers the target loss
                                              (a beneficial sample); positive: harmful
  self_influence(i)    =  g_i^T H^-1 g_i      >= 0 unless non-positive eigenvalues are kept
  l_relative(t, i)     =  classic(t, i) / sqrt(self_influence(i))   (paper eq. 5; the paper's
                          I_classic(z_i, z_i) = -self_influence, the square root is of its magnitude)
  theta_relative(t, i) =  classic(t, i) / ||H^-1 g_i||               (Barshan et al. RelatIF)

Pieces:
  ParamFlattener   list of tensors <-> one flat vector [num_params]
  HessianOperator  H v on a fixed subset: forward-over-backward (``tf.autodiff.ForwardAccumulator``
                   around a ``GradientTape``) or double backprop; summed over chunks of the subset
  arnoldi          Krylov basis in float64 with two Gram-Schmidt passes per step, restarting
                   with a fresh orthogonal vector when the Krylov space becomes invariant
  distill          eigenpairs of the projected (Hessenberg) matrix, top-k by |eigenvalue|
  InfluenceScorer  per-sample gradients (the loss's own batched ones, or ``tf.vectorized_map``) projected on
                   the eigenbasis; a training pool is projected once (``PoolCache``), after
                   which scoring a target costs one gradient and a [T, k] x [k, N] product.

Non-positive eigenvalues (the network is not at an exact minimum, so H can be indefinite):
  ``nonpositive="drop"`` (default, as Captum): eigenpairs with lambda <= rtol * max|lambda| are
      removed; H^-1 acts as the pseudo-inverse of H's positive part on the kept subspace.
  ``"damp"``: every kept eigenvalue becomes |lambda| + damping (damping > 0), i.e. the
      inverse of |H| + damping I (saddle-free Newton) on the subspace: negative curvature
      counts like positive curvature of the same size, and the damping bounds 1 / lambda.
  ``"keep"``: signed eigenvalues as they are (+ damping); the exact inverse when the basis is
      full rank, for checks; self-influence can then be negative and l_relative is NaN there.
The number of eigenpairs actually used is ``EigenBasis.inverse(...)``'s length (<= top_k).
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
import tensorflow as tf

PerSampleLoss = Callable[[Sequence[tf.Tensor], dict], tf.Tensor]
_ZERO = tf.UnconnectedGradients.ZERO


@dataclass(frozen=True)
class InfluenceConfig:
    """Every setting of an influence computation (saved next to results)."""
    top_k: int = 40                      # eigenpairs kept (the paper: 40)
    # Arnoldi steps (HVPs); None: 2 * top_k, capped at num_params. The float64 basis takes
    # (num_iterations + 1) * num_params * 8 bytes: 0.76 GB for the paper preset at 80 steps
    num_iterations: int | None = None
    nonpositive: Literal["drop", "damp", "keep"] = "drop"
    damping: float = 0.0                 # added to the (|)eigenvalues(|); "damp" needs > 0
    # "drop": eigenvalues <= rtol * max|lambda| count as non-positive. With float32 HVPs the Ritz
    # values of flat directions are noise of ~1e-7 * max|lambda|; raise rtol above that if the
    # top-k reaches them (1 / noise would dominate the inverse)
    rtol: float = 1e-8
    hvp_method: Literal["forward_over_backward", "double_backprop"] = "forward_over_backward"
    hvp_chunk_size: int | None = None    # Hessian-subset samples per HVP call (None: all at once)
    batch_size: int = 64                 # samples per per-sample-gradient call
    seed: int = 0                        # Arnoldi start vector (and restarts)

    def __post_init__(self):
        if int(self.top_k) != self.top_k or self.top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {self.top_k!r}")
        if self.num_iterations is not None and self.num_iterations < self.top_k:
            raise ValueError(f"num_iterations ({self.num_iterations}) must be >= top_k ({self.top_k})")
        if self.nonpositive not in ("drop", "damp", "keep"):
            raise ValueError(f"nonpositive must be 'drop', 'damp' or 'keep', got {self.nonpositive!r}")
        if self.damping < 0 or (self.nonpositive == "damp" and self.damping <= 0):
            raise ValueError(f"damping must be >= 0 (> 0 for nonpositive='damp'), got {self.damping}")
        if not 0 <= self.rtol < 1:
            raise ValueError(f"rtol must be in [0, 1), got {self.rtol}")
        if self.hvp_method not in ("forward_over_backward", "double_backprop"):
            raise ValueError(f"unknown hvp_method {self.hvp_method!r}")
        for name in ("hvp_chunk_size", "batch_size"):
            v = getattr(self, name)
            if v is not None and (int(v) != v or v < 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

    def iterations(self, num_params: int) -> int:
        return min(self.num_iterations or 2 * self.top_k, num_params)


# -- flat parameter vectors -------------------------------------------------------------------------------
class ParamFlattener:
    """A list of tensors with fixed shapes <-> one flat vector [num_params] (in list order)."""

    def __init__(self, params: Sequence[tf.Tensor]):
        self.shapes = [tuple(int(d) for d in p.shape) for p in params]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.size = int(sum(self.sizes))
        self.dtype = tf.as_dtype(params[0].dtype)

    def flatten(self, tensors: Sequence[tf.Tensor]) -> tf.Tensor:
        """list of tensors with the parameter shapes -> [num_params]."""
        return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)

    def unflatten(self, vec) -> list[tf.Tensor]:
        """[num_params] -> list of tensors with the parameter shapes."""
        vec = tf.convert_to_tensor(vec)
        if vec.shape[-1] != self.size:
            raise ValueError(f"flat vector has {vec.shape[-1]} entries, the parameters {self.size}")
        parts = tf.split(vec, self.sizes, axis=-1)
        return [tf.reshape(p, s) for p, s in zip(parts, self.shapes)]


def _batch_len(batch: dict) -> int:
    return int(tf.nest.flatten(batch)[0].shape[0])


def _slice(batch: dict, start: int, stop: int) -> dict:
    return tf.nest.map_structure(lambda t: t[start:stop], batch)


def _chunks(n: int, size: int | None) -> list[tuple[int, int]]:
    size = size or n
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def snapshot(params: Sequence) -> list[tf.Tensor]:
    """Constant copies of the parameters (influence is taken at a fixed theta)."""
    return [tf.constant(tf.convert_to_tensor(p)) for p in params]


# -- Hessian-vector products -------------------------------------------------------------------------------
_HVP_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _hvp_impl(loss: PerSampleLoss, flat: ParamFlattener, method: str):
    """(params, chunk, v_flat) -> H_chunk v (the chunk's summed loss), flat [num_params]."""

    def fob(params, chunk, v_flat):
        tangents = flat.unflatten(v_flat)
        with tf.autodiff.ForwardAccumulator(params, tangents) as acc:
            with tf.GradientTape() as tape:
                tape.watch(params)
                total = tf.reduce_sum(loss(params, chunk))
            grads = tape.gradient(total, params, unconnected_gradients=_ZERO)
        return flat.flatten(acc.jvp(grads, unconnected_gradients=_ZERO))

    def dbp(params, chunk, v_flat):
        tangents = flat.unflatten(v_flat)
        with tf.GradientTape() as outer:
            outer.watch(params)
            with tf.GradientTape() as inner:
                inner.watch(params)
                total = tf.reduce_sum(loss(params, chunk))
            grads = inner.gradient(total, params, unconnected_gradients=_ZERO)
            dot = tf.add_n([tf.reduce_sum(g * t) for g, t in zip(grads, tangents)])
        return flat.flatten(outer.gradient(dot, params, unconnected_gradients=_ZERO))

    return fob if method == "forward_over_backward" else dbp


class HessianOperator:
    """v [num_params] -> H v, H the Hessian of mean_{z in subset} loss(theta; z) at fixed theta.

    The subset is fixed at construction; the HVP of each chunk is one compiled call and the
    chunks' sums are added in float64 before dividing by the subset size."""

    def __init__(self, loss: PerSampleLoss, params: Sequence, subset: dict,
                 method: Literal["forward_over_backward", "double_backprop"] = "forward_over_backward",
                 chunk_size: int | None = None):
        self.loss = loss
        self.params = snapshot(params)
        self.flat = ParamFlattener(self.params)
        self.subset = tf.nest.map_structure(tf.convert_to_tensor, subset)
        self.num_samples = _batch_len(self.subset)
        self._chunks = [_slice(self.subset, a, b) for a, b in _chunks(self.num_samples, chunk_size)]
        if method not in ("forward_over_backward", "double_backprop"):
            raise ValueError(f"unknown HVP method {method!r}")
        self.method = method
        # cached per loss, method and parameter layout (like per_sample_gradients): an operator built
        # again after fine-tuning (same loss, new weights) reuses the trace
        key = (method, tuple(self.flat.shapes), self.flat.dtype.name)
        per_loss = _HVP_FNS.setdefault(loss, {})
        if key not in per_loss:
            per_loss[key] = tf.function(_hvp_impl(loss, self.flat, method), reduce_retracing=True)
        self._hvp = per_loss[key]
        self.num_hvps = 0

    @property
    def dim(self) -> int:
        return self.flat.size

    def matvec(self, v) -> np.ndarray:
        """v [num_params] (any float dtype) -> H v [num_params] float64."""
        v_t = tf.constant(np.asarray(v), self.flat.dtype)
        out = np.zeros(self.dim)
        for chunk in self._chunks:
            out += self._hvp(self.params, chunk, v_t).numpy().astype(np.float64)
        self.num_hvps += 1
        return out / self.num_samples


# -- Arnoldi and distillation -------------------------------------------------------------------------------
@dataclass
class ArnoldiResult:
    basis: np.ndarray        # [n + 1, num_params] float64, orthonormal rows (the last may be zero)
    hessenberg: np.ndarray   # [n + 1, n] float64: H basis[:n].T = basis.T hessenberg
    restarts: int            # times the Krylov space was invariant and a fresh vector was drawn


def _orthogonalize(w: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classical Gram-Schmidt applied twice ("twice is enough"): w minus its projection on the rows
    of ``basis``, and the projection coefficients. One pass loses orthogonality in float64 once
    the basis grows, and a full-rank basis must be orthonormal to machine precision."""
    c1 = basis @ w
    w = w - c1 @ basis
    c2 = basis @ w
    return w - c2 @ basis, c1 + c2


def arnoldi(matvec: Callable[[np.ndarray], np.ndarray], dim: int, num_iterations: int,
            seed: int = 0, breakdown_tol: float = 1e-10) -> ArnoldiResult:
    """``num_iterations`` Arnoldi steps on the symmetric operator ``matvec`` ([dim] -> [dim]).

    When ||w|| after orthogonalisation falls below ``breakdown_tol`` times the largest
    column norm so far (an invariant subspace, e.g. a repeated or zero eigenvalue), the
    sub-diagonal entry is 0 and the next basis vector is a fresh random one orthogonal to the
    basis, so ``num_iterations = dim`` always spans the whole space."""
    n = int(min(num_iterations, dim))
    if n < 1:
        raise ValueError(f"num_iterations must be >= 1, got {num_iterations}")
    rng = np.random.default_rng(seed)
    V = np.zeros((n + 1, dim))
    A = np.zeros((n + 1, n))
    v0 = rng.standard_normal(dim)
    V[0] = v0 / np.linalg.norm(v0)
    scale, restarts = 0.0, 0
    for i in range(n):
        w, coeffs = _orthogonalize(np.asarray(matvec(V[i]), np.float64), V[:i + 1])
        A[:i + 1, i] = coeffs
        beta = float(np.linalg.norm(w))
        scale = max(scale, math.hypot(float(np.linalg.norm(coeffs)), beta))
        if i + 1 >= dim:
            break                           # the basis already spans the space
        if beta > breakdown_tol * scale:
            A[i + 1, i] = beta
            V[i + 1] = w / beta
        else:
            restarts += 1
            r, _ = _orthogonalize(rng.standard_normal(dim), V[:i + 1])
            V[i + 1] = r / np.linalg.norm(r)
    return ArnoldiResult(V, A, restarts)


@dataclass
class EigenBasis:
    """Top-k eigenpairs of H by |eigenvalue| (Ritz pairs of the Arnoldi basis)."""
    eigenvalues: np.ndarray      # [k] float64, sorted by |lambda|, largest first
    eigenvectors: np.ndarray     # [num_params, k] float64, orthonormal columns
    ritz_values: np.ndarray      # [n] every Ritz value, sorted by |lambda| (for spectrum plots)

    def inverse(self, nonpositive: str = "drop", damping: float = 0.0,
                rtol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
        """(U [num_params, k'], lambda_eff [k']) with H^-1 ~= U diag(1 / lambda_eff) U^T (module docstring)."""
        lam = self.eigenvalues
        if nonpositive == "drop":
            keep = lam > rtol * np.max(np.abs(lam), initial=0.0)
            return self.eigenvectors[:, keep], lam[keep] + damping
        if nonpositive == "damp":
            if damping <= 0:
                raise ValueError(f"nonpositive='damp' needs damping > 0, got {damping}")
            return self.eigenvectors, np.abs(lam) + damping
        if nonpositive == "keep":
            return self.eigenvectors, lam + damping
        raise ValueError(f"nonpositive must be 'drop', 'damp' or 'keep', got {nonpositive!r}")


def distill(result: ArnoldiResult, top_k: int) -> EigenBasis:
    """Eigen-decompose the n x n projected matrix and keep the top_k pairs by |eigenvalue|.

    H is symmetric, so basis H basis^T is symmetric tridiagonal up to rounding; it is
    symmetrised before ``eigh`` so the Ritz pairs are real and orthonormal."""
    n = result.hessenberg.shape[1]
    T = result.hessenberg[:n, :n]
    lam, Q = np.linalg.eigh(0.5 * (T + T.T))
    order = np.argsort(-np.abs(lam), kind="stable")
    top = order[:top_k]
    return EigenBasis(eigenvalues=lam[top], eigenvectors=result.basis[:n].T @ Q[:, top],
                      ritz_values=lam[order])


def fit_eigenbasis(hessian: HessianOperator, config: InfluenceConfig) -> EigenBasis:
    """Arnoldi on ``hessian`` (config.iterations HVPs) distilled to config.top_k eigenpairs."""
    res = arnoldi(hessian.matvec, hessian.dim, config.iterations(hessian.dim), seed=config.seed)
    return distill(res, config.top_k)


# -- per-sample gradients and scores ----------------------------------------------------------------------
_GRADIENT_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def per_sample_gradients(loss: PerSampleLoss, flat: ParamFlattener):
    """A compiled function (params, batch) -> per-sample gradients [batch, num_params]: the loss's own
    ``per_sample_gradients`` attribute where it has one (a model that computes them in one batched
    backward pass, as ``models.deeprx.per_sample_grads`` does), else vectorised over the samples
    with ``tf.vectorized_map`` (pfor), not a Python loop.

    Cached per loss function and parameter layout: the parameters are an argument, so scorers
    built again after fine-tuning (same loss, new weights) reuse the trace (~3 s on 2 cores)."""
    own = getattr(loss, "per_sample_gradients", None)
    if own is not None:
        return own
    key = (tuple(flat.shapes), flat.dtype.name)
    per_loss = _GRADIENT_FNS.setdefault(loss, {})
    if key not in per_loss:
        per_loss[key] = _per_sample_gradients(loss, flat)
    return per_loss[key]


def _per_sample_gradients(loss: PerSampleLoss, flat: ParamFlattener):

    @tf.function(reduce_retracing=True)
    def grads(params, batch):
        def one(sample):
            sample = tf.nest.map_structure(lambda t: t[None], sample)
            with tf.GradientTape() as tape:
                tape.watch(params)
                total = tf.reduce_sum(loss(params, sample))
            return flat.flatten(tape.gradient(total, params, unconnected_gradients=_ZERO))

        return tf.vectorized_map(one, batch)

    return grads


@dataclass
class PoolCache:
    """A training pool projected once on the eigenbasis (k' = number of eigenpairs used)."""
    coords: np.ndarray          # [N, k'] U^T g_i / lambda_eff: H^-1 g_i in eigen-coordinates
    self_influence: np.ndarray  # [N] g_i^T H^-1 g_i
    theta_norm: np.ndarray      # [N] ||H^-1 g_i||


@dataclass
class InfluenceScores:
    classic: np.ndarray          # [T, N]
    theta_relative: np.ndarray   # [T, N]
    l_relative: np.ndarray       # [T, N]
    self_influence: np.ndarray   # [N]


def _relative(classic: np.ndarray, denom: np.ndarray) -> np.ndarray:
    """classic / denom per training sample; a zero denominator means a zero gradient (score 0),
    a negative one (only with nonpositive='keep') has no square root (NaN)."""
    out = np.full_like(classic, np.nan)
    ok = denom > 0
    out[:, ok] = classic[:, ok] / denom[ok]
    out[:, denom == 0] = 0.0
    return out


class InfluenceScorer:
    """Scores targets against a training pool at fixed parameters (module docstring).

    loss:         the training loss (its per-sample gradients are the training-side g_i)
    target_loss:  the loss whose gradient defines a target (default ``loss``; e.g. a BER surrogate)
    """

    def __init__(self, loss: PerSampleLoss, params: Sequence, basis: EigenBasis,
                 config: InfluenceConfig | None = None, target_loss: PerSampleLoss | None = None):
        self.config = config or InfluenceConfig()
        self.params = snapshot(params)
        self.flat = ParamFlattener(self.params)
        if basis.eigenvectors.shape[0] != self.flat.size:
            raise ValueError(f"eigenbasis has {basis.eigenvectors.shape[0]} rows, the parameters {self.flat.size}")
        cfg = self.config
        self.basis = basis
        U, lam = basis.inverse(cfg.nonpositive, cfg.damping, cfg.rtol)
        self.num_eigen = int(lam.size)
        self.lambda_eff = lam
        self._U = tf.constant(U, tf.float64)
        self._grads = per_sample_gradients(loss, self.flat)
        self._target_grads = (self._grads if target_loss is None
                              else per_sample_gradients(target_loss, self.flat))

    def _project(self, grads_fn, batch: dict, batch_size: int | None = None) -> np.ndarray:
        out = []
        for a, b in _chunks(_batch_len(batch), batch_size or self.config.batch_size):
            g = grads_fn(self.params, _slice(batch, a, b))
            out.append(tf.matmul(tf.cast(g, tf.float64), self._U).numpy())
        return np.concatenate(out, axis=0) if out else np.zeros((0, self.num_eigen))

    def projected_gradients(self, batch: dict, target: bool = False, batch_size: int | None = None) -> np.ndarray:
        """U^T g for every sample: [N, k'] float64 (``target``: with the target loss); ``batch_size``
        samples per compiled call (default config.batch_size)."""
        return self._project(self._target_grads if target else self._grads, batch, batch_size)

    def cache_pool(self, pool: dict, batch_size: int | None = None) -> PoolCache:
        """Project every pool sample once; scoring then needs only the targets' gradients."""
        a = self.projected_gradients(pool, batch_size=batch_size)   # [N, k']
        q = a / self.lambda_eff                                  # eigen-coordinates of H^-1 g_i
        return PoolCache(coords=q, self_influence=np.sum(a * q, axis=1), theta_norm=np.linalg.norm(q, axis=1))

    def scores(self, targets: dict, pool: PoolCache) -> InfluenceScores:
        """Every target [T samples] against every pool sample [N]."""
        return self.scores_from_projection(self.projected_gradients(targets, target=True), pool)

    @staticmethod
    def scores_from_projection(target_proj: np.ndarray, pool: PoolCache) -> InfluenceScores:
        classic = -target_proj @ pool.coords.T                    # [T, N]
        with np.errstate(invalid="ignore"):
            sqrt_self = np.where(pool.self_influence >= 0, np.sqrt(np.abs(pool.self_influence)), -1.0)
        return InfluenceScores(classic=classic, theta_relative=_relative(classic, pool.theta_norm),
                               l_relative=_relative(classic, sqrt_self), self_influence=pool.self_influence)


def most_beneficial(scores: np.ndarray, m: int) -> np.ndarray:
    """Indices of the m most beneficial pool samples (most negative score) of scores [N] or [T, N]
    (summed over targets: the multi-target variant)."""
    s = scores if scores.ndim == 1 else np.sum(scores, axis=0)
    return np.argsort(s, kind="stable")[:m]


def most_harmful(scores: np.ndarray, m: int) -> np.ndarray:
    """Indices of the m most harmful pool samples (most positive score)."""
    s = scores if scores.ndim == 1 else np.sum(scores, axis=0)
    return np.argsort(-s, kind="stable")[:m]
