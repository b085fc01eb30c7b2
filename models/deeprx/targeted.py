"""Influence-guided targeted fine-tuning of DeepRx (seeds/000 Sec. 3, steps 1-3).

  1. targets: the evaluation slots with the largest relative BER gap to the genie-aided receiver
     (``relative_ber_gap``, paper eq. 9), among those with BER_genie >= 1e-3 (``select_targets``);
  2. influence of every pool (training) sample on the targets' loss (``influence.py``: Arnoldi
     eigenbasis of the Hessian of the training loss on a fixed subset, the pool projected once);
  3. a few first-order steps on the chosen samples (``TargetedFineTuner.run``).

Variants (``TargetedConfig.variant``):
  "influence"        descent on the ``num_samples`` most beneficial pool samples (most negative
                     score ``cfg.score`` of the target loss ``cfg.loss``)
  "random"           descent on ``num_samples`` pool samples drawn uniformly (the paper's baseline)
  "gradient_ascent"  ascent on the ``num_samples`` most harmful pool samples (most positive score):
                     "unlearning" them; the paper reports that it harms

Losses. Scoring: the pool side is always the training loss (masked BCE), the target side is
``cfg.loss``: "bce" or "ber" (the soft-BER surrogate ``model.soft_ber``). Fine-tuning always
minimises (or, for gradient_ascent, maximises) the mean training loss (BCE) of the chosen samples.

Multi-target: a ``targets`` batch of T > 1 samples is scored by the SUM of the per-target scores,
which equals the score against the sum of the targets' gradients (every score is linear in the
target gradient; the relative scores divide by a pool-side quantity only), and ranks the pool
exactly as the mean would. ``target_loss_*`` in the result are means over the targets.

Updates: ``optimizer="sgd"`` (default, the paper's "first-order gradient descent"):
theta <- theta -/+ lr * grad of the chosen samples' mean loss, full batch, every step on the same
chosen set. ``"adam"``: Adam with fresh moments (its first step moves every parameter by about lr,
whatever the gradient's scale); offered because the paper's learning rates (0.001-0.002, unstable
above 0.01) read like Adam's, which the seeds do not say.

The input weights are never mutated: updates are functional on tensor copies.
"""
from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import tensorflow as tf

from models.deeprx.influence import (HessianOperator, InfluenceConfig, InfluenceScorer, InfluenceScores, PoolCache,
                                     fit_eigenbasis, most_beneficial, most_harmful)
from models.deeprx.model import hard_ber

VARIANTS = ("influence", "random", "gradient_ascent")
SCORES = ("classic", "theta_relative", "l_relative")
TARGET_LOSSES = {"bce": "bce", "ber": "soft_ber"}       # TargetedConfig.loss -> model loss name
OPTIMIZERS = ("sgd", "adam")
_STEP_FNS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()   # training loss -> compiled gradient


# -- step 1: targets ---------------------------------------------------------------------------------------
def relative_ber_gap(ber_rx, ber_genie) -> np.ndarray:
    """Relative BER gap to the genie-aided receiver (paper eq. 9): (BER_rx - BER_genie) / BER_genie.

    Element-wise on arrays of any (equal or broadcastable) shape; float64. Where BER_genie = 0
    the gap is +inf (BER_rx > 0), NaN (BER_rx = 0) or -inf, without warnings."""
    rx, genie = np.asarray(ber_rx, np.float64), np.asarray(ber_genie, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rx - genie) / genie


def select_targets(ber_rx, ber_genie, num_targets: int, min_genie_ber: float = 1e-3) -> np.ndarray:
    """Indices of the ``num_targets`` samples with the largest relative BER gap among those with
    BER_genie >= ``min_genie_ber`` (the paper: 1e-3, so the gap is not a ratio of a few bit
    errors), largest gap first (ties: lower index first). ber_rx, ber_genie [N] -> [<= num_targets]
    int64; fewer when fewer samples qualify (none: an empty array)."""
    rx, genie = np.asarray(ber_rx, np.float64), np.asarray(ber_genie, np.float64)
    if rx.ndim != 1 or rx.shape != genie.shape:
        raise ValueError(f"ber_rx and ber_genie must be 1-D of the same length, got {rx.shape} and {genie.shape}")
    if isinstance(num_targets, bool) or int(num_targets) != num_targets or num_targets < 1:
        raise ValueError(f"num_targets must be a positive integer, got {num_targets!r}")
    if not (min_genie_ber > 0 and math.isfinite(min_genie_ber)):
        raise ValueError(f"min_genie_ber must be a positive number, got {min_genie_ber!r}")
    gap = relative_ber_gap(rx, genie)
    eligible = np.flatnonzero((genie >= min_genie_ber) & np.isfinite(gap))
    order = np.argsort(-gap[eligible], kind="stable")
    return eligible[order[:int(num_targets)]].astype(np.int64)


# -- settings ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetedConfig:
    """Every setting of one targeted fine-tuning (saved next to results)."""
    variant: Literal["influence", "random", "gradient_ascent"] = "influence"
    score: Literal["classic", "theta_relative", "l_relative"] = "l_relative"
    loss: Literal["bce", "ber"] = "bce"          # target loss for scoring ("ber": soft-BER surrogate)
    num_samples: int = 50                        # pool samples fine-tuned on (the paper's top-50)
    steps: int = 3
    learning_rate: float = 0.002
    optimizer: Literal["sgd", "adam"] = "sgd"
    influence: InfluenceConfig = field(default_factory=InfluenceConfig)   # top_k = 40

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; valid: {', '.join(VARIANTS)}")
        if self.score not in SCORES:
            raise ValueError(f"unknown score {self.score!r}; valid: {', '.join(SCORES)}")
        if self.loss not in TARGET_LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; valid: {', '.join(TARGET_LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        for name in ("num_samples", "steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        lr = self.learning_rate
        if isinstance(lr, bool) or not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"learning_rate must be a positive finite number, got {lr!r}")
        if not isinstance(self.influence, InfluenceConfig):
            raise ValueError(f"influence must be an InfluenceConfig, got {type(self.influence).__name__}")

    @property
    def label(self) -> str:
        """Short name for tables: 'influence/l_relative/bce', 'random', 'gradient_ascent/l_relative/bce'."""
        return self.variant if self.variant == "random" else f"{self.variant}/{self.score}/{self.loss}"


@dataclass
class FineTuneResult:
    weights: list[np.ndarray]          # fine-tuned weights, model.params order
    chosen: np.ndarray                 # [num_samples] pool rows fine-tuned on (best first for influence)
    chosen_index: np.ndarray           # [num_samples] their training sample indices (pool_index[chosen])
    scores: np.ndarray | None          # [N] the ranking scores (summed over targets); None for random
    target_loss_before: float          # mean over the targets of cfg.loss, before and after
    target_loss_after: float
    trajectory: list[list[np.ndarray]] | None = None   # weights after 0..steps steps (keep_trajectory)


# -- the fine-tuner ------------------------------------------------------------------------------------------
def _as_batch(batch: dict, dtype) -> dict:
    return {k: tf.convert_to_tensor(batch[k], dtype) for k in ("x", "bits", "mask")}


def _rows(batch: dict, rows: np.ndarray) -> dict:
    idx = tf.constant(np.asarray(rows, np.int64))
    return {k: tf.gather(v, idx) for k, v in batch.items()}


def _batch_len(batch: dict) -> int:
    return int(batch["x"].shape[0])


class TargetedFineTuner:
    """Influence machinery built once at fixed weights, then any number of targeted fine-tunings.

    model:           a DeepRx (its ``forward`` and losses; its variables are not touched)
    weights:         the weights to start from, a list in ``model.params`` order or a dict by name
    pool:            training samples to choose from, {"x", "bits", "mask"} [N, ...] (``data.to_batch``)
    hessian_subset:  the fixed samples whose mean training loss defines the Hessian (same layout)
    influence_config: eigenbasis settings (top_k = 40 by default); ``TargetedConfig.influence``
                     of every run must equal it
    pool_index:      [N] training sample index of each pool row (default 0..N-1)

    Construction runs Arnoldi (``influence_config.iterations`` HVPs) and projects the whole pool
    (N per-sample gradients): the expensive part. ``run`` then costs the targets' gradients, a
    [T, k] x [k, N] product and ``steps`` gradients of the chosen samples.
    """

    def __init__(self, model, weights, pool: dict, hessian_subset: dict,
                 influence_config: InfluenceConfig | None = None, pool_index: Sequence[int] | None = None):
        self.model = model
        self.dtype = tf.as_dtype(model.config.dtype)
        self.weights = self._weight_list(weights)
        self.pool = _as_batch(pool, self.dtype)
        self.num_pool = _batch_len(self.pool)
        if self.num_pool < 1:
            raise ValueError("the pool is empty")
        self.pool_index = (np.arange(self.num_pool) if pool_index is None
                           else np.asarray(pool_index, np.int64))
        if self.pool_index.shape != (self.num_pool,):
            raise ValueError(f"pool_index has shape {self.pool_index.shape}, the pool {self.num_pool} samples")
        self.influence_config = influence_config or InfluenceConfig()
        cfg = self.influence_config
        self._train_loss = model.per_sample_loss("bce")
        params = [tf.constant(w) for w in self.weights]
        self.hessian = HessianOperator(self._train_loss, params, _as_batch(hessian_subset, self.dtype),
                                       method=cfg.hvp_method, chunk_size=cfg.hvp_chunk_size)
        self.basis = fit_eigenbasis(self.hessian, cfg)
        self.scorers = {name: InfluenceScorer(self._train_loss, params, self.basis, cfg,
                                              target_loss=model.per_sample_loss(loss))
                        for name, loss in TARGET_LOSSES.items()}
        self.pool_cache: PoolCache = self.scorers["bce"].cache_pool(self.pool)
        self._step_fn = self._make_step()

    def _weight_list(self, weights) -> list[np.ndarray]:
        names = self.model.param_names
        if isinstance(weights, dict):
            missing = sorted(set(names) - set(weights))
            if missing:
                raise ValueError(f"weights lack {missing}")
            weights = [weights[n] for n in names]
        if len(weights) != len(names):
            raise ValueError(f"expected {len(names)} weight tensors, got {len(weights)}")
        out = []
        for n, w, v in zip(names, weights, self.model.params):
            w = np.array(w, dtype=self.dtype.as_numpy_dtype, copy=True)
            if w.shape != tuple(v.shape):
                raise ValueError(f"weight {n}: shape {w.shape} != expected {tuple(v.shape)}")
            out.append(w)
        return out

    @property
    def num_eigen(self) -> int:
        return self.scorers["bce"].num_eigen

    # -- scoring ----------------------------------------------------------------------------------------
    def influence_scores(self, targets: dict, loss: str = "bce") -> InfluenceScores:
        """Every target against every pool sample ([T, N] per score) with target loss ``loss``."""
        if loss not in TARGET_LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(TARGET_LOSSES)}")
        return self.scorers[loss].scores(_as_batch(targets, self.dtype), self.pool_cache)

    def choose(self, targets: dict, cfg: TargetedConfig, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """(pool rows to fine-tune on [num_samples], ranking scores [N] or None for random)."""
        if cfg.num_samples > self.num_pool:
            raise ValueError(f"num_samples ({cfg.num_samples}) exceeds the pool ({self.num_pool} samples)")
        if cfg.variant == "random":
            return np.sort(rng.choice(self.num_pool, cfg.num_samples, replace=False)).astype(np.int64), None
        s = getattr(self.influence_scores(targets, cfg.loss), cfg.score)
        s = np.sum(s, axis=0)                                           # multi-target: summed (docstring)
        if np.isnan(s).any():
            raise ValueError(f"{cfg.score} scores are NaN for {int(np.isnan(s).sum())} pool samples "
                             "(negative self-influence: use nonpositive='drop' or 'damp')")
        pick = most_beneficial if cfg.variant == "influence" else most_harmful
        return pick(s, cfg.num_samples).astype(np.int64), s

    # -- fine-tuning ------------------------------------------------------------------------------------
    def _make_step(self):
        """The compiled mean-loss gradient, one per training loss (so per model: fine-tuners built
        again after each update reuse its trace)."""
        loss = self._train_loss
        if loss not in _STEP_FNS:

            @tf.function(reduce_retracing=True)
            def grads(params, batch):
                with tf.GradientTape() as tape:
                    tape.watch(params)
                    value = tf.reduce_mean(loss(params, batch))
                return tape.gradient(value, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)

            _STEP_FNS[loss] = grads
        return _STEP_FNS[loss]

    def target_loss(self, weights: Sequence, targets: dict, loss: str = "bce") -> np.ndarray:
        """Per-target ``loss`` ("bce" or "ber") at ``weights``: [T]."""
        if loss not in TARGET_LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(TARGET_LOSSES)}")
        fn = self.model.per_sample_loss(TARGET_LOSSES[loss])
        return fn([tf.constant(w) for w in weights], _as_batch(targets, self.dtype)).numpy()

    def ber(self, weights: Sequence, batch: dict) -> np.ndarray:
        """Uncoded BER of hard decisions at ``weights`` on every sample of ``batch``: [T]."""
        b = _as_batch(batch, self.dtype)
        llr = self.model.forward(b["x"], [tf.constant(w) for w in weights])
        return hard_ber(llr, b["bits"], b["mask"]).numpy()

    def fine_tune(self, chosen: np.ndarray, cfg: TargetedConfig, keep_trajectory: bool = False
                  ) -> tuple[list[np.ndarray], list[list[np.ndarray]] | None]:
        """``cfg.steps`` full-batch steps on the pool rows ``chosen`` from the tuner's weights
        (ascent for gradient_ascent). Returns (weights, trajectory or None)."""
        batch = _rows(self.pool, chosen)
        sign = 1.0 if cfg.variant == "gradient_ascent" else -1.0
        params = [tf.constant(w) for w in self.weights]
        lr = tf.constant(cfg.learning_rate, self.dtype)
        traj = [self.weights] if keep_trajectory else None
        m = [tf.zeros_like(p) for p in params]
        v = [tf.zeros_like(p) for p in params]
        b1, b2, eps = 0.9, 0.999, 1e-7                           # Keras Adam defaults
        for t in range(1, cfg.steps + 1):
            g = self._step_fn(params, batch)
            if cfg.optimizer == "sgd":
                params = [p + sign * lr * gi for p, gi in zip(params, g)]
            else:
                m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
                v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
                a = cfg.learning_rate * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                params = [p + sign * a * mi / (tf.sqrt(vi) + eps) for p, mi, vi in zip(params, m, v)]
            if keep_trajectory:
                traj.append([p.numpy() for p in params])
        return [p.numpy() for p in params], traj

    def run(self, targets: dict, cfg: TargetedConfig, rng: np.random.Generator,
            keep_trajectory: bool = False) -> FineTuneResult:
        """Choose pool samples for the targets (one or several, {"x", "bits", "mask"} [T, ...]) as
        ``cfg`` says and fine-tune on them; the tuner's weights stay as they were."""
        if cfg.influence != self.influence_config:
            raise ValueError("cfg.influence differs from the influence_config the tuner's eigenbasis was "
                             f"built with ({cfg.influence} != {self.influence_config})")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        targets = _as_batch(targets, self.dtype)
        if _batch_len(targets) < 1:
            raise ValueError("no targets")
        chosen, scores = self.choose(targets, cfg, rng)
        weights, traj = self.fine_tune(chosen, cfg, keep_trajectory)
        return FineTuneResult(weights=weights, chosen=chosen, chosen_index=self.pool_index[chosen], scores=scores,
                              target_loss_before=float(np.mean(self.target_loss(self.weights, targets, cfg.loss))),
                              target_loss_after=float(np.mean(self.target_loss(weights, targets, cfg.loss))),
                              trajectory=traj)
