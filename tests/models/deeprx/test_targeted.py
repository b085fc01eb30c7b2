"""Targeted fine-tuning on a tiny float64 DeepRx: target selection (eq. 9 gap, BER floor), the
chosen samples are the best-scored ones (a copy of the target in the pool first), multi-target
scores are the sum of single-target ones, the update is the known gradient step (descent lowers,
ascent raises the chosen samples' loss; descent on the target's copy lowers the target loss),
input weights untouched, config errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from models.deeprx.influence import InfluenceConfig
from models.deeprx.targeted import (TargetedConfig, TargetedFineTuner, relative_ber_gap, select_targets)
from tests.models.deeprx.conftest import random_batch

INFL = InfluenceConfig(top_k=20, batch_size=8)


def cfg(**kw) -> TargetedConfig:
    return TargetedConfig(influence=INFL, **kw)


def _cat(a: dict, b: dict) -> dict:
    return {k: tf.concat([a[k], b[k]], 0) for k in a}


def _take(batch: dict, rows) -> dict:
    return {k: tf.gather(v, rows) for k, v in batch.items()}


@pytest.fixture(scope="module")
def setup(tiny64):
    """Pool of 12 random samples + a copy of target 0 (row 12); a separate Hessian subset."""
    rng = np.random.default_rng(7)
    subset, pool, targets = (random_batch(rng, n, tiny64.config) for n in (8, 12, 3))
    pool = _cat(pool, _take(targets, [0]))
    weights = [v.numpy().copy() for v in tiny64.params]
    tuner = TargetedFineTuner(tiny64, weights, pool, subset, INFL, pool_index=np.arange(100, 113))
    return tuner, targets, weights


def test_relative_ber_gap_is_eq_9():
    got = relative_ber_gap([0.2, 0.1, 0.05, 0.0, 0.1], [0.1, 0.1, 0.1, 0.0, 0.0])
    assert got[:3].tolist() == pytest.approx([1.0, 0.0, -0.5])
    assert np.isnan(got[3]) and got[4] == np.inf


def test_select_targets_largest_gaps_above_the_genie_floor():
    ber_genie = np.array([1e-2, 5e-4, 2e-2, 0.0, 1e-3, 0.1, 2e-3])
    ber_rx = np.array([3e-2, 5e-2, 3e-2, 0.2, 4e-3, 0.1, 2e-3])
    # gaps: 2, 99 (genie below floor), 0.5, inf (genie 0), 3, 0, 0
    assert select_targets(ber_rx, ber_genie, 3).tolist() == [4, 0, 2]
    assert select_targets(ber_rx, ber_genie, 10).tolist() == [4, 0, 2, 5, 6]   # only 5 qualify, ties by index
    assert select_targets(ber_rx, ber_genie, 1, min_genie_ber=1e-4).tolist() == [1]
    assert select_targets(ber_rx, ber_genie, 2, min_genie_ber=0.5).size == 0
    with pytest.raises(ValueError, match="num_targets must be a positive integer, got 0"):
        select_targets(ber_rx, ber_genie, 0)
    with pytest.raises(ValueError, match="1-D of the same length"):
        select_targets(ber_rx, ber_genie[:3], 2)
    with pytest.raises(ValueError, match="min_genie_ber must be a positive number, got 0"):
        select_targets(ber_rx, ber_genie, 2, min_genie_ber=0)


@pytest.mark.parametrize("score", ["classic", "theta_relative", "l_relative"])
@pytest.mark.parametrize("loss", ["bce", "ber"])
def test_influence_picks_the_most_negative_scores(setup, score, loss):
    tuner, targets, _ = setup
    t0 = _take(targets, [0])
    res = tuner.run(t0, cfg(score=score, loss=loss, num_samples=4, steps=1), np.random.default_rng(0))
    s = getattr(tuner.influence_scores(t0, loss), score)[0]
    assert np.array_equal(res.scores, s)
    assert res.chosen.tolist() == np.argsort(s)[:4].tolist()
    assert np.all(s[res.chosen] < 0) and np.all(s[res.chosen][:, None] <= np.delete(s, res.chosen)[None, :])
    assert res.chosen_index.tolist() == (100 + res.chosen).tolist()
    if score == "l_relative" and loss == "bce":
        # Cauchy-Schwarz in the H^-1 inner product: the target's own copy is the most beneficial
        assert res.chosen[0] == 12


def test_gradient_ascent_picks_the_most_positive_scores(setup):
    tuner, targets, _ = setup
    res = tuner.run(_take(targets, [1]), cfg(variant="gradient_ascent", num_samples=3, steps=1),
                    np.random.default_rng(0))
    assert res.chosen.tolist() == np.argsort(-res.scores)[:3].tolist() and np.all(res.scores[res.chosen] > 0)


def test_multi_target_scores_are_the_sum_of_single_target_scores(setup):
    tuner, targets, _ = setup
    res = tuner.run(targets, cfg(num_samples=5, steps=1), np.random.default_rng(0))
    single = sum(tuner.run(_take(targets, [t]), cfg(num_samples=5, steps=1), np.random.default_rng(0)).scores
                 for t in range(3))
    np.testing.assert_allclose(res.scores, single, rtol=1e-10)
    assert res.chosen.tolist() == np.argsort(single)[:5].tolist()
    assert res.target_loss_before == pytest.approx(np.mean(tuner.target_loss(tuner.weights, targets)))


def test_random_variant_is_uniform_and_seeded(setup):
    tuner, targets, _ = setup
    a = tuner.run(targets, cfg(variant="random", num_samples=6, steps=1), np.random.default_rng(3))
    b = tuner.run(targets, cfg(variant="random", num_samples=6, steps=1), np.random.default_rng(3))
    assert a.scores is None and np.array_equal(a.chosen, b.chosen) and len(set(a.chosen.tolist())) == 6
    picks = np.concatenate([tuner.choose(targets, cfg(variant="random", num_samples=6), np.random.default_rng(s))[0]
                            for s in range(200)])
    counts = np.bincount(picks, minlength=13)
    assert counts.min() > 0.6 * counts.mean() and counts.max() < 1.4 * counts.mean()   # 6/13 each, ~92 +- 7


def _mean_grad(tuner, weights, rows) -> list[np.ndarray]:
    params = [tf.constant(w) for w in weights]
    with tf.GradientTape() as tape:
        tape.watch(params)
        value = tf.reduce_mean(tuner.model.per_sample_loss("bce")(params, _take(tuner.pool, rows)))
    return [g.numpy() for g in tape.gradient(value, params)]


@pytest.mark.parametrize("variant,sign", [("influence", -1.0), ("gradient_ascent", 1.0)])
def test_sgd_steps_are_gradient_steps_on_the_chosen_samples(setup, variant, sign):
    tuner, targets, weights = setup
    c = cfg(variant=variant, num_samples=4, steps=2, learning_rate=0.05)
    res = tuner.run(_take(targets, [2]), c, np.random.default_rng(0), keep_trajectory=True)
    w = weights
    for k in range(2):
        w = [wi + sign * 0.05 * gi for wi, gi in zip(w, _mean_grad(tuner, w, res.chosen))]
        for a, b in zip(res.trajectory[k + 1], w):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert len(res.trajectory) == 3 and all(np.array_equal(a, b) for a, b in zip(res.trajectory[0], weights))
    assert all(np.array_equal(a, b) for a, b in zip(res.trajectory[-1], res.weights))
    # descent lowers and ascent raises the chosen samples' own loss
    chosen_loss = lambda ws: float(np.mean(tuner.target_loss(ws, _take(tuner.pool, res.chosen))))  # noqa: E731
    assert sign * (chosen_loss(res.weights) - chosen_loss(weights)) > 0


def test_descent_on_the_targets_copy_lowers_the_target_loss(setup):
    tuner, targets, _ = setup
    t0 = _take(targets, [0])
    res = tuner.run(t0, cfg(num_samples=1, steps=3, learning_rate=0.05), np.random.default_rng(0))
    assert res.chosen.tolist() == [12]
    assert res.target_loss_after < res.target_loss_before - 1e-4
    asc = tuner.fine_tune(res.chosen, cfg(variant="gradient_ascent", num_samples=1, steps=3, learning_rate=0.05))[0]
    assert tuner.target_loss(asc, t0)[0] > res.target_loss_before + 1e-4     # ascent on it raises it


def test_adam_first_step_moves_each_parameter_by_about_lr(setup):
    tuner, targets, weights = setup
    res = tuner.run(_take(targets, [0]), cfg(num_samples=4, steps=1, optimizer="adam", learning_rate=0.01),
                    np.random.default_rng(0))
    g = _mean_grad(tuner, weights, res.chosen)
    for w0, w1, gi in zip(weights, res.weights, g):
        big = np.abs(gi) > 1e-3      # Keras' eps (1e-7) is added to sqrt(v) before bias correction
        np.testing.assert_allclose((w1 - w0)[big], -0.01 * np.sign(gi[big]), rtol=1e-2)


def test_input_weights_and_model_variables_are_untouched(tiny64, setup):
    tuner, targets, weights = setup
    before = [w.copy() for w in weights]
    variables = [v.numpy().copy() for v in tiny64.params]
    for variant in ("influence", "random", "gradient_ascent"):
        res = tuner.run(targets, cfg(variant=variant, num_samples=3, learning_rate=0.1), np.random.default_rng(0))
        assert any(not np.array_equal(a, b) for a, b in zip(res.weights, before))
    assert all(np.array_equal(a, b) for a, b in zip(weights, before))
    assert all(np.array_equal(a, b) for a, b in zip(tuner.weights, before))
    assert all(np.array_equal(v.numpy(), b) for v, b in zip(tiny64.params, variables))


def test_weights_by_name_equal_weights_by_list(tiny64, setup):
    tuner, targets, weights = setup
    cheap = InfluenceConfig(top_k=1, num_iterations=2)
    by_name = TargetedFineTuner(tiny64, dict(zip(tiny64.param_names, weights)), tuner.pool,
                                tuner.hessian.subset, cheap)
    assert all(np.array_equal(a, b) for a, b in zip(by_name.weights, weights))
    with pytest.raises(ValueError, match="expected 27 weight tensors, got 2"):
        TargetedFineTuner(tiny64, weights[:2], tuner.pool, tuner.hessian.subset, cheap)
    with pytest.raises(ValueError, match="weights lack \\['block0/bias1'\\]"):
        TargetedFineTuner(tiny64, {n: w for n, w in zip(tiny64.param_names, weights) if n != "block0/bias1"},
                          tuner.pool, tuner.hessian.subset, cheap)


def test_a_second_fine_tuner_reuses_the_first_ones_traces(tiny64, setup):
    """Fine-tuners built again after an update (same model, new weights) trace nothing new: the
    per-sample gradients, the HVP and the step gradient are keyed on the model's loss functions."""
    tuner, targets, weights = setup
    assert tiny64.per_sample_loss("bce") is tiny64.per_sample_loss("bce")
    fns = [tuner.scorers["bce"]._grads, tuner.hessian._hvp, tuner._step_fn]
    tuner.run(targets, cfg(num_samples=3), np.random.default_rng(0))
    counts = [f.experimental_get_tracing_count() for f in fns]
    moved = [w + 1e-3 for w in weights]
    again = TargetedFineTuner(tiny64, moved, tuner.pool, tuner.hessian.subset, INFL, pool_index=tuner.pool_index)
    again.run(targets, cfg(num_samples=3), np.random.default_rng(0))
    assert [again.scorers["bce"]._grads, again.hessian._hvp, again._step_fn] == fns
    assert [f.experimental_get_tracing_count() for f in fns] == counts


def test_config_errors(setup):
    with pytest.raises(ValueError, match="unknown variant 'harmful'; valid: influence, random, gradient_ascent"):
        TargetedConfig(variant="harmful")
    with pytest.raises(ValueError, match="unknown score 'newfluence'; valid: classic, theta_relative, l_relative"):
        TargetedConfig(score="newfluence")
    with pytest.raises(ValueError, match="unknown loss 'mse'; valid: bce, ber"):
        TargetedConfig(loss="mse")
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        TargetedConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="num_samples must be a positive integer, got 0"):
        TargetedConfig(num_samples=0)
    with pytest.raises(ValueError, match="steps must be a positive integer, got 2.5"):
        TargetedConfig(steps=2.5)
    with pytest.raises(ValueError, match="learning_rate must be a positive finite number, got -0.1"):
        TargetedConfig(learning_rate=-0.1)
    with pytest.raises(ValueError, match="learning_rate must be a positive finite number, got nan"):
        TargetedConfig(learning_rate=float("nan"))
    with pytest.raises(ValueError, match="influence must be an InfluenceConfig, got dict"):
        TargetedConfig(influence={"top_k": 40})
    assert TargetedConfig().influence.top_k == 40 and TargetedConfig().label == "influence/l_relative/bce"
    with pytest.raises(dataclasses.FrozenInstanceError):
        TargetedConfig().steps = 4
    tuner, targets, _ = setup
    with pytest.raises(ValueError, match="num_samples \\(50\\) exceeds the pool \\(13 samples\\)"):
        tuner.run(targets, cfg(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="cfg.influence differs from the influence_config"):
        tuner.run(targets, TargetedConfig(num_samples=2), np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator, got int"):
        tuner.run(targets, cfg(num_samples=2), 0)
