"""Influence-function speed on the DeepRx ``small`` preset (float32, untrained weights: speed does
not depend on training).

Run: .venv/bin/python -m pytest -m benchmark -s tests/benchmarks/bench_influence.py

Grid 14 OFDM symbols x 72 subcarriers (6 PRB), one receive antenna, random resource grids.
- HVPs per second on a Hessian subset of 16 samples (one compiled call per HVP), both
  forward-over-backward and double backprop, and in units of one batched gradient of the same
  subset's mean loss; best of three timed repeats after a warm-up.
- Arnoldi build for k = 40 (80 HVPs, float64 basis, distillation), one timed run after the
  HVP warm-up.
- Scoring N = 128 training samples against one target (projected per-sample gradients of the
  pool + the target's + the score products) as a ratio to N plain per-sample gradients
  (the same vectorised gradient function without projection), timed in the same run; a Python
  loop of per-sample gradients for reference.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow as tf

from models.deeprx.influence import (HessianOperator, InfluenceConfig, InfluenceScorer, fit_eigenbasis,
                                     per_sample_gradients, snapshot)
from models.deeprx.model import DeepRx, DeepRxConfig
from tests.benchmarks.bench_csi_codec import _best
from tests.models.deeprx.conftest import random_batch

pytestmark = pytest.mark.benchmark

NUM_SYM, NUM_SC = 14, 72
SUBSET, POOL = 16, 128


@pytest.fixture(scope="module")
def setup():
    model = DeepRx(DeepRxConfig.preset("small"), seed=0)
    rng = np.random.default_rng(0)
    subset, pool, target = (random_batch(rng, n, model.config, NUM_SYM, NUM_SC) for n in (SUBSET, POOL, 1))
    return model, model.per_sample_loss("bce"), subset, pool, target


def test_hvps_per_second_and_arnoldi_build(setup):
    model, loss, subset, _, _ = setup
    v = np.random.default_rng(1).standard_normal(model.num_parameters())
    rates = {}
    for method in ("forward_over_backward", "double_backprop"):
        op = HessianOperator(loss, model.params, subset, method=method)
        t = _best(lambda: [op.matvec(v) for _ in range(5)])
        rates[method] = 5 / t
    params = snapshot(model.params)

    @tf.function
    def mean_gradient(batch):
        with tf.GradientTape() as tape:
            tape.watch(params)
            value = tf.reduce_mean(loss(params, batch))
        return tape.gradient(value, params)

    t_grad = _best(lambda: [mean_gradient(subset) for _ in range(5)]) / 5
    cfg = InfluenceConfig(top_k=40)
    op = HessianOperator(loss, model.params, subset)
    op.matvec(v)                                                     # trace outside the timing
    t0 = time.perf_counter()
    basis = fit_eigenbasis(op, cfg)
    t_arnoldi = time.perf_counter() - t0
    print(f"\n[bench] DeepRx small ({model.num_parameters():,} params), grid {NUM_SYM}x{NUM_SC}, Hessian subset "
          f"{SUBSET}: {rates['forward_over_backward']:.2f} HVP/s forward-over-backward, "
          f"{rates['double_backprop']:.2f} HVP/s double backprop (one gradient of the subset's mean loss: "
          f"{t_grad * 1e3:.0f} ms, i.e. an HVP costs {1 / (rates['forward_over_backward'] * t_grad):.1f} / "
          f"{1 / (rates['double_backprop'] * t_grad):.1f} gradients) | Arnoldi k=40 ({cfg.iterations(op.dim)} HVPs): "
          f"{t_arnoldi:.1f} s; |lambda| {abs(basis.eigenvalues[0]):.3g} .. {abs(basis.eigenvalues[-1]):.3g}, "
          f"{int(np.sum(basis.eigenvalues <= 0))} of 40 non-positive")
    assert basis.eigenvalues.shape == (40,) and min(rates.values()) > 0.1


def test_scoring_cost_relative_to_per_sample_gradients(setup):
    model, loss, subset, pool, target = setup
    cfg = InfluenceConfig(top_k=40, batch_size=POOL)
    basis = fit_eigenbasis(HessianOperator(loss, model.params, subset), cfg)
    scorer = InfluenceScorer(loss, model.params, basis, cfg)
    grads = per_sample_gradients(loss, scorer.flat)
    params = snapshot(model.params)

    def score():
        return scorer.scores(target, scorer.cache_pool(pool))

    def plain():
        return grads(params, pool).numpy()

    def loop():
        for i in range(32):
            with tf.GradientTape() as tape:
                value = tf.reduce_sum(loss(params, {k: t[i:i + 1] for k, t in pool.items()}))
            tape.gradient(value, params)

    t_plain = _best(plain)
    t_score = _best(score)
    t_loop = _best(loop, repeats=1) * POOL / 32
    s = score()
    print(f"\n[bench] scoring {POOL} training samples vs 1 target (k'={scorer.num_eigen}): {t_score * 1e3:.0f} ms; "
          f"{POOL} per-sample gradients (vectorised): {t_plain * 1e3:.0f} ms -> ratio {t_score / t_plain:.2f} | "
          f"eager Python loop of per-sample gradients: {t_loop * 1e3:.0f} ms for {POOL} (extrapolated from 32)")
    assert s.classic.shape == (1, POOL) and np.all(np.isfinite(s.l_relative))
    assert t_score / t_plain < 3.0
