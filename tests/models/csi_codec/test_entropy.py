"""DeepFactorized density: a valid CDF and density, learns known distributions, integer tables."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from models.csi_codec.entropy import LIKELIHOOD_BOUND, DeepFactorized, quantize_pmf
from tests.models.csi_codec.conftest import GAUSS_MEAN, GAUSS_STD, LAPLACE_SCALE, sample_known


def _true_bin_masses(k: np.ndarray) -> np.ndarray:
    """[len(k), 2]: unit-bin masses of the two known densities at integers k."""
    lap = stats.laplace(0, LAPLACE_SCALE)
    gau = stats.norm(GAUSS_MEAN, GAUSS_STD)
    return np.stack([lap.cdf(k + 0.5) - lap.cdf(k - 0.5), gau.cdf(k + 0.5) - gau.cdf(k - 0.5)], axis=1)


@pytest.mark.parametrize("which", ["untrained", "fitted"])
def test_cdf_is_valid_and_density_integrates_to_one(which, fitted_density):
    ef = fitted_density if which == "fitted" else DeepFactorized(2, rng=np.random.default_rng(3))
    x = np.linspace(-400.0, 400.0, 160001)
    xt = tf.constant(np.stack([x, x]).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        cdf = ef.cdf(xt)
    pdf = tape.gradient(cdf, xt).numpy().astype(np.float64)   # d cdf / dx, element-wise
    cdf = cdf.numpy()
    assert np.all(cdf[:, 0] < 1e-6) and np.all(cdf[:, -1] > 1 - 1e-6)
    assert np.all(np.diff(cdf, axis=1) >= -1e-6)              # non-decreasing up to float32 rounding
    assert np.all(pdf >= 0)
    area = np.sum(0.5 * (pdf[:, 1:] + pdf[:, :-1]) * np.diff(x), axis=1)
    np.testing.assert_allclose(area, 1.0, atol=2e-3)
    # unit-bin masses over all integers sum to one
    k = np.arange(-400, 401, dtype=np.float32)
    lik = ef.likelihood(np.stack([k, k], axis=-1)[None], bound=False).numpy()[0]
    np.testing.assert_allclose(lik.sum(axis=0), 1.0, atol=1e-5)


def test_fitted_density_matches_the_known_distributions(fitted_density):
    k = np.arange(-30, 31)
    lik = fitted_density.likelihood(np.stack([k, k], -1).astype(np.float32)[None], bound=False).numpy()[0]
    true = _true_bin_masses(k)
    tv = 0.5 * np.abs(lik - true).sum(axis=0)
    assert np.all(tv < 0.025), tv
    # bits estimate of rounded samples ~ their entropy under the true discretised law
    y = np.rint(sample_known(np.random.default_rng(11), (4000,)))
    est = fitted_density.bits(y[:, None, :]).numpy().mean()
    ideal = -np.log2(_true_bin_masses(y[:, 0])[:, 0]).mean() - np.log2(_true_bin_masses(y[:, 1])[:, 1]).mean()
    assert abs(est - ideal) < 0.05 * ideal, (est, ideal)


def test_likelihood_floor_still_passes_gradients_upwards():
    ef = DeepFactorized(1, rng=np.random.default_rng(0))
    y = tf.constant([[[[190.0]]]])                            # in the tail: likelihood ~3e-10 < bound
    assert 0 < float(tf.reduce_sum(ef.likelihood(y, bound=False))) < LIKELIHOOD_BOUND
    with tf.GradientTape() as tape:
        bits = tf.reduce_sum(ef.bits(y))
    grads = tape.gradient(bits, ef.parameters)
    assert float(bits) == pytest.approx(-np.log2(LIKELIHOOD_BOUND), rel=1e-4)
    # a plain maximum would stop the gradient here; the bound lets the density learn the sample
    assert any(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    with tf.GradientTape() as tape:
        plain = -tf.math.log(tf.maximum(ef.likelihood(y, bound=False), LIKELIHOOD_BOUND))
    assert all(float(tf.reduce_max(tf.abs(g))) == 0 for g in tape.gradient(plain, ef.parameters))


def test_quantize_pmf_is_exact_positive_and_proportional():
    rng = np.random.default_rng(0)
    pmf = rng.dirichlet(np.full(300, 0.3))
    pmf[7] = 0.0
    counts = quantize_pmf(pmf, 16)
    assert counts.sum() == 1 << 16 and counts.min() >= 1 and counts[7] == 1
    np.testing.assert_allclose(counts / 2 ** 16, pmf, atol=300 / 2 ** 16)
    assert np.array_equal(counts, quantize_pmf(pmf.copy(), 16))
    with pytest.raises(ValueError, match="symbols"):
        quantize_pmf([1.0], 16)
    with pytest.raises(ValueError, match="non-negative"):
        quantize_pmf([0.5, -0.1, 0.6], 16)


def test_tables_follow_the_density_and_escape_carries_the_tails(fitted_density):
    tables = fitted_density.probability_tables(tail_mass=1e-6, precision=24)
    for c in range(2):
        counts = tables.counts[c]
        k = tables.minima[c] + np.arange(len(counts) - 1)
        lik = fitted_density.likelihood(np.stack([k, k], -1).astype(np.float32)[None], bound=False).numpy()[0, :, c]
        p = counts[:-1] / 2 ** 24
        big = lik > 1e-4
        np.testing.assert_allclose(p[big], lik[big], rtol=1e-3)
        assert counts[-1] / 2 ** 24 < 1e-5                   # escape mass ~ the tail mass
        # the range covers the central 1 - 1e-6 of the density
        assert lik.sum() > 1 - 1e-5


def test_tables_are_kept_by_parameter_values_and_recomputed_when_they_change():
    density = DeepFactorized(4, rng=np.random.default_rng(3))
    first = density.probability_tables(1e-6, 16)
    assert density.probability_tables(1e-6, 16) is first                   # same values: kept
    fresh = density._probability_tables(1e-6, 16, None)                    # what the cache stands for
    assert np.array_equal(first.minima, fresh.minima)
    assert all(np.array_equal(a, b) for a, b in zip(first.counts, fresh.counts))
    with pytest.raises(ValueError):
        first.counts[0][0] = 1                                             # shared: read-only
    saved = [p.numpy() for p in density.parameters]
    density.biases[0].assign(density.biases[0] + 2.0)                      # shifts every density
    moved = density.probability_tables(1e-6, 16)
    assert moved is not first
    assert not np.array_equal(moved.minima, first.minima)
    recomputed = density._probability_tables(1e-6, 16, None)
    assert all(np.array_equal(a, b) for a, b in zip(moved.counts, recomputed.counts))
    for p, v in zip(density.parameters, saved):                            # back to the first values
        p.assign(v)
    assert density.probability_tables(1e-6, 16) is first
    assert density.probability_tables(1e-6, 14) is not first                # precision is part of the key
