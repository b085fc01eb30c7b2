"""Influence functions on a tiny float64 DeepRx checked against an exactly computed Hessian:
HVPs vs the exact Hessian and central finite differences, full-rank Arnoldi eigenpairs and
influence vs exact ones, top-k selection by |eigenvalue|, vectorised per-sample gradients,
pool caching and the non-positive-eigenvalue policies."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.deeprx.influence import (EigenBasis, HessianOperator, InfluenceConfig, InfluenceScorer, ParamFlattener,
                                     arnoldi, distill, fit_eigenbasis, most_beneficial, most_harmful,
                                     per_sample_gradients, snapshot)
from models.deeprx.model import DeepRx, DeepRxConfig
from tests.models.deeprx.conftest import TINY, random_batch

REL = 1e-6


def rel_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def make_problem(model, data_seed: int) -> dict:
    """Loss, params, Hessian subset, pool and targets of ``model``, the exact Hessian [p, p] of the
    mean subset loss (jacobian of the gradient w.r.t. the flat parameter vector) and one
    full-rank Arnoldi run (p HVPs)."""
    rng = np.random.default_rng(data_seed)
    subset, pool, targets = (random_batch(rng, n, model.config) for n in (6, 10, 3))
    loss = model.per_sample_loss("bce")
    params = snapshot(model.params)
    flat = ParamFlattener(params)
    theta = flat.flatten(params)
    with tf.GradientTape() as outer:
        outer.watch(theta)
        with tf.GradientTape() as inner:
            inner.watch(theta)
            mean_loss = tf.reduce_mean(loss(flat.unflatten(theta), subset))
        grad = inner.gradient(mean_loss, theta)
    H = outer.jacobian(grad, theta).numpy()
    hessian = HessianOperator(loss, params, subset)
    return dict(model=model, loss=loss, params=params, flat=flat, subset=subset, pool=pool, targets=targets,
                H=0.5 * (H + H.T), hessian=hessian, full_rank=arnoldi(hessian.matvec, flat.size, flat.size, seed=0))


@pytest.fixture(scope="module")
def problem(tiny64):
    """The tiny LayerNorm DeepRx: its Hessian is indefinite and singular (LayerNorm's shift
    invariance makes the bias before each norm a flat direction), so 'drop' is what applies."""
    return make_problem(tiny64, data_seed=0)


@pytest.fixture(scope="module")
def plain():
    """The tiny DeepRx without normalisation, at a seed where the Hessian is indefinite but
    nonsingular, so the exact inverse exists ('keep')."""
    return make_problem(DeepRx(DeepRxConfig(**TINY, norm="none", dtype="float64"), seed=3), data_seed=11)


def loop_gradients(loss, params, batch) -> np.ndarray:
    """Reference per-sample gradients [N, p]: one tape per sample in a Python loop."""
    n = int(batch["x"].shape[0])
    out = []
    for i in range(n):
        sample = {k: v[i:i + 1] for k, v in batch.items()}
        with tf.GradientTape() as tape:
            tape.watch(params)
            total = tf.reduce_sum(loss(params, sample))
        out.append(np.concatenate([g.numpy().ravel() for g in tape.gradient(total, params)]))
    return np.stack(out)


def exact_scores(problem, nonpositive: str) -> dict:
    """Influence with the exact Hessian: 'keep' inverts H, 'drop' pseudo-inverts its positive part."""
    lam, Q = np.linalg.eigh(problem["H"])
    if nonpositive == "drop":
        keep = lam > 1e-8 * np.abs(lam).max()
        lam, Q = lam[keep], Q[:, keep]
    h_inv = (Q / lam) @ Q.T
    g_pool = loop_gradients(problem["loss"], problem["params"], problem["pool"])
    g_tgt = loop_gradients(problem["loss"], problem["params"], problem["targets"])
    classic = -g_tgt @ h_inv @ g_pool.T
    self_inf = np.einsum("np,pq,nq->n", g_pool, h_inv, g_pool)
    theta_norm = np.linalg.norm(g_pool @ h_inv, axis=1)
    return dict(classic=classic, self_influence=self_inf, theta_relative=classic / theta_norm,
                l_relative=classic / np.sqrt(np.where(self_inf > 0, self_inf, np.nan)))


def test_flattener_round_trip_keeps_shapes_and_order(problem):
    flat, params = problem["flat"], problem["params"]
    vec = flat.flatten(params)
    assert vec.shape == (flat.size,) and flat.size == problem["model"].num_parameters()
    back = flat.unflatten(vec)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(params, back))
    assert np.array_equal(vec[:int(np.prod(params[0].shape))].numpy(), params[0].numpy().ravel())
    with pytest.raises(ValueError, match=f"has 3 entries, the parameters {flat.size}"):
        flat.unflatten(np.zeros(3))


def test_the_problems_have_the_spectra_the_exactness_tests_need(problem, plain):
    """Preconditions: both signs present (so 'drop' matters); for the LayerNorm net its structural
    zero eigenvalues (the residual stream feeds only LayerNorms and skips, so shifting it by a
    constant across channels changes nothing) far below the drop threshold (1e-8 relative) and the
    rest clearly above it; the plain net well conditioned (its exact inverse is accurate)."""
    for p in (problem, plain):
        lam = np.linalg.eigvalsh(p["H"])
        assert np.sum(lam < 0) > 10 and np.sum(lam > 0) > 10
    a = np.abs(np.linalg.eigvalsh(problem["H"]))
    a = a / a.max()
    assert np.sum(a < 1e-14) >= 10 and not np.any((a >= 1e-14) & (a <= 5e-8))
    b = np.abs(np.linalg.eigvalsh(plain["H"]))
    assert b.min() > 1e-7 * b.max()


@pytest.mark.parametrize("method", ["forward_over_backward", "double_backprop"])
def test_hvp_equals_exact_hessian_and_finite_differences(problem, method):
    loss, params, flat, subset = problem["loss"], problem["params"], problem["flat"], problem["subset"]
    op = HessianOperator(loss, params, subset, method=method, chunk_size=4)    # 2 uneven chunks
    rng = np.random.default_rng(5)
    v = rng.standard_normal(flat.size)
    hv = op.matvec(v)
    assert rel_err(hv, problem["H"] @ v) < 1e-12

    theta = flat.flatten(params).numpy()

    def grad_at(t):
        p = flat.unflatten(tf.constant(t))
        with tf.GradientTape() as tape:
            tape.watch(p)
            mean_loss = tf.reduce_mean(loss(p, subset))
        return flat.flatten(tape.gradient(mean_loss, p)).numpy()

    eps = 1e-7           # central differences: truncation ~eps^2 (4e-5 at 1e-5), round-off ~1e-16 / eps
    fd = (grad_at(theta + eps * v) - grad_at(theta - eps * v)) / (2 * eps)
    assert rel_err(hv, fd) < 1e-6
    # and a wrong operator would not pass: the HVP of another direction is far off
    assert rel_err(op.matvec(rng.standard_normal(flat.size)), fd) > 0.1


def test_full_rank_arnoldi_recovers_the_exact_spectrum(problem):
    op, res = problem["hessian"], problem["full_rank"]
    basis = distill(res, op.dim)
    V = res.basis[:op.dim]
    assert np.abs(V @ V.T - np.eye(op.dim)).max() < 1e-10          # orthonormal to float64 precision
    lam_exact = np.linalg.eigvalsh(problem["H"])
    assert rel_err(np.sort(basis.eigenvalues), lam_exact) < 1e-10
    assert res.restarts > 0            # the zero eigenvalues' invariant subspace was left by restarting
    U = basis.eigenvectors
    assert rel_err(problem["H"] @ U, U * basis.eigenvalues) < 1e-8


def _full_rank_scores(p, nonpositive):
    op = p["hessian"]
    cfg = InfluenceConfig(top_k=op.dim, num_iterations=op.dim, nonpositive=nonpositive, batch_size=4)
    scorer = InfluenceScorer(p["loss"], p["params"], distill(p["full_rank"], op.dim), cfg)
    return scorer, scorer.scores(p["targets"], scorer.cache_pool(p["pool"])), exact_scores(p, nonpositive)


def test_full_rank_arnoldi_influence_equals_exact_influence_drop(problem):
    scorer, got, ref = _full_rank_scores(problem, "drop")
    lam = np.linalg.eigvalsh(problem["H"])
    assert scorer.num_eigen == int(np.sum(lam > 1e-8 * np.abs(lam).max()))
    for name in ("classic", "self_influence", "theta_relative", "l_relative"):
        assert rel_err(getattr(got, name), ref[name]) < REL, name
    assert np.all(got.self_influence > 0)


def test_full_rank_arnoldi_influence_equals_exact_influence_keep(plain):
    scorer, got, ref = _full_rank_scores(plain, "keep")
    assert scorer.num_eigen == plain["flat"].size
    for name in ("classic", "self_influence", "theta_relative"):
        assert rel_err(getattr(got, name), ref[name]) < REL, name
    neg = ref["self_influence"] < 0      # indefinite H: these have no square root
    assert np.isnan(got.l_relative[:, neg]).all()
    assert rel_err(got.l_relative[:, ~neg], ref["l_relative"][:, ~neg]) < REL


def test_top_k_keeps_the_largest_eigenvalues_by_magnitude(problem):
    op = problem["hessian"]
    k = 12
    lam = np.linalg.eigvalsh(problem["H"])
    by_mag = lam[np.argsort(-np.abs(lam))]
    # the test can tell: the k largest by |lambda| include negative ones and differ from the k largest
    # signed and from the k smallest by magnitude
    assert np.any(by_mag[:k] < 0)
    assert not np.allclose(np.sort(by_mag[:k]), np.sort(lam[-k:]))
    basis = distill(problem["full_rank"], k)
    assert basis.eigenvalues.shape == (k,) and basis.eigenvectors.shape == (op.dim, k)
    assert rel_err(basis.eigenvalues, by_mag[:k]) < 1e-10
    assert np.all(np.diff(np.abs(basis.eigenvalues)) <= 0)
    # truncated Arnoldi (2k steps, far fewer than the 425 parameters) already finds the outer ones
    short = distill(arnoldi(op.matvec, op.dim, 2 * k, seed=1), k)
    assert rel_err(short.eigenvalues[:3], by_mag[:3]) < 1e-6


def test_nonpositive_policies():
    lam = np.array([5.0, -4.0, 2.0, 1e-12, -1e-3])
    basis = EigenBasis(lam, np.eye(5), lam)
    U, eff = basis.inverse("drop", rtol=1e-8)
    assert np.array_equal(eff, [5.0, 2.0]) and np.array_equal(U, np.eye(5)[:, [0, 2]])
    U, eff = basis.inverse("damp", damping=0.5)
    assert np.allclose(eff, np.abs(lam) + 0.5) and U.shape == (5, 5)
    _, eff = basis.inverse("keep")
    assert np.array_equal(eff, lam)
    with pytest.raises(ValueError, match="damping > 0"):
        basis.inverse("damp")
    with pytest.raises(ValueError, match="damping must be >= 0 \\(> 0 for nonpositive='damp'\\), got 0.0"):
        InfluenceConfig(nonpositive="damp")
    with pytest.raises(ValueError, match="num_iterations \\(10\\) must be >= top_k \\(40\\)"):
        InfluenceConfig(num_iterations=10)


def test_vectorised_per_sample_gradients_equal_a_loop(problem):
    fn = per_sample_gradients(problem["loss"], problem["flat"])
    got = fn(problem["params"], problem["pool"]).numpy()
    assert got.shape == (10, problem["flat"].size)
    assert rel_err(got, loop_gradients(problem["loss"], problem["params"], problem["pool"])) < 1e-12


@pytest.fixture(scope="module")
def scorer(problem):
    cfg = InfluenceConfig(top_k=20, batch_size=3)
    return InfluenceScorer(problem["loss"], problem["params"], fit_eigenbasis(problem["hessian"], cfg), cfg)


def test_scores_do_not_depend_on_batching_and_targets_score_independently(problem, scorer):
    pool = scorer.cache_pool(problem["pool"])                               # 4 calls of <= 3 samples
    assert pool.coords.shape == (10, scorer.num_eigen) and 0 < scorer.num_eigen <= 20
    assert rel_err(scorer.cache_pool(problem["pool"], batch_size=10).coords, pool.coords) < 1e-12
    s_all = scorer.scores(problem["targets"], pool)
    assert s_all.classic.shape == (3, 10)
    one = scorer.scores({k: v[1:2] for k, v in problem["targets"].items()}, pool)
    assert rel_err(one.classic[0], s_all.classic[1]) < 1e-12
    # a pool sample scored as a target against itself gives minus its self-influence
    own = scorer.scores({k: v[4:5] for k, v in problem["pool"].items()}, pool)
    assert own.classic[0, 4] == pytest.approx(-pool.self_influence[4], rel=1e-10)


def test_l_relative_ranks_a_copy_of_the_target_first(problem, scorer):
    """With a positive semi-definite inverse ('drop'), Cauchy-Schwarz in the H^-1 inner product
    gives l_relative(t, i) = -<g_t, g_i> / ||g_i|| >= -||g_t||, with equality iff g_i is a positive
    multiple of g_t: a copy of the target in the pool is the most beneficial sample, at exactly
    -sqrt(self-influence of the target)."""
    for t in range(3):
        pool_batch = {k: tf.concat([problem["pool"][k], problem["targets"][k][t:t + 1]], 0) for k in problem["pool"]}
        pool = scorer.cache_pool(pool_batch)
        s = scorer.scores({k: v[t:t + 1] for k, v in problem["targets"].items()}, pool)
        assert most_beneficial(s.l_relative[0], 1).tolist() == [10]
        assert s.l_relative[0, 10] == pytest.approx(-np.sqrt(pool.self_influence[10]), rel=1e-10)
        assert np.all(s.l_relative[0, :10] > s.l_relative[0, 10])


def test_target_loss_changes_only_the_target_side(problem, scorer, tiny64):
    """A soft-BER target loss: the target's projected gradient is that of soft_ber (checked against
    a loop gradient projected by hand), the pool side stays the training loss."""
    ber_loss = tiny64.per_sample_loss("soft_ber")
    ber = InfluenceScorer(problem["loss"], problem["params"], scorer.basis, scorer.config, target_loss=ber_loss)
    pool = scorer.cache_pool(problem["pool"])
    U, _ = scorer.basis.inverse(scorer.config.nonpositive, scorer.config.damping, scorer.config.rtol)
    expected = loop_gradients(ber_loss, problem["params"], problem["targets"]) @ U
    assert rel_err(ber.projected_gradients(problem["targets"], target=True), expected) < 1e-10
    s_bce, s_ber = scorer.scores(problem["targets"], pool), ber.scores(problem["targets"], pool)
    assert rel_err(s_ber.classic, -expected @ pool.coords.T) < 1e-10
    assert rel_err(s_bce.classic, s_ber.classic) > 1e-3


def test_most_beneficial_and_harmful():
    s = np.array([[0.5, -2.0, 1.0, -0.1], [0.0, -1.0, 3.0, -0.2]])
    assert most_beneficial(s[0], 2).tolist() == [1, 3]
    assert most_harmful(s[0], 1).tolist() == [2]
    assert most_beneficial(s, 4).tolist() == [1, 3, 0, 2]       # summed over targets: [0.5, -3, 4, -0.3]
