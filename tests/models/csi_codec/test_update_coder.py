"""Decoder updates: quantiser grid and straight-through gradients, the spike-and-slab prior and
its rate, exact round trips, and coded bits close to eq. 19."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from models.csi_codec.update_coder import (SpikeSlabPrior, UniformPrior, UpdateCoder, UpdateQuantizer,
                                          make_prior)


@pytest.mark.parametrize("bins", [2, 3, 8, 64, 65])
def test_grid_has_n_levels_including_zero_and_clips(bins):
    q = UpdateQuantizer(bins, 0.01)
    assert len(q.levels) == bins and 0 in q.levels
    assert np.all(np.diff(q.levels) == 1)
    k = q.indices(np.array([-1.0, 1.0, 0.0, 0.004, 0.006, -0.0149]))
    assert k[0] == q.k_min and k[1] == q.k_max and k[2] == 0
    assert k[3] == 0 and k[4] == min(1, q.k_max) and k[5] == max(-1, q.k_min)


def test_invalid_quantizer_and_prior_settings_are_refused():
    with pytest.raises(ValueError, match="got 1"):
        UpdateQuantizer(1, 0.01)
    with pytest.raises(ValueError, match="bin_width"):
        UpdateQuantizer(64, 0.0)
    with pytest.raises(ValueError, match="kind"):
        SpikeSlabPrior(kind="cauchy")
    with pytest.raises(ValueError, match="valid: spike_slab, uniform"):
        make_prior("gauss")


def test_straight_through_gradient_passes_quantisation_and_clipping():
    q = UpdateQuantizer(8, 0.01)
    delta = tf.Variable([0.0012, -0.0071, 0.5, -0.5, 0.0249])    # two are clipped
    w = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0])
    with tf.GradientTape() as tape:
        dq = q.quantize_ste(delta)
        out = tf.reduce_sum(w * dq)
    np.testing.assert_allclose(dq.numpy(), q.indices(delta.numpy()) * 0.01, rtol=1e-6)
    np.testing.assert_array_equal(tape.gradient(out, delta).numpy(), w.numpy())


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_spike_and_slab_pmf_is_the_bin_mass_of_the_mixture(kind):
    q = UpdateQuantizer(64, 0.005)
    prior = SpikeSlabPrior(alpha=100.0, sigma_slab=0.05, kind=kind)
    pmf = prior.pmf(q)
    assert pmf.shape == (64,) and abs(pmf.sum() - 1) < 1e-12
    dist = stats.norm if kind == "gaussian" else stats.laplace
    scale = (lambda s: s) if kind == "gaussian" else (lambda s: s / np.sqrt(2))   # same std
    spike, slab = dist(0, scale(0.005 / 6)), dist(0, scale(0.05))
    mix = lambda x: (100 * spike.cdf(x) + slab.cdf(x)) / 101                      # noqa: E731
    i0 = -q.k_min
    assert pmf[i0] == pytest.approx(mix(0.0025) - mix(-0.0025), rel=1e-9)
    assert pmf[i0 + 5] == pytest.approx(mix(0.0275) - mix(0.0225), rel=1e-9)
    assert pmf[0] == pytest.approx(mix((q.k_min + 0.5) * 0.005), rel=1e-9)    # edge bin takes the tail
    if kind == "gaussian":                                      # t / 6 spike: ~99.7 % in the zero bin
        assert mix(0.0025) - mix(-0.0025) > 100 / 101 * 0.997


@pytest.mark.parametrize("prior", [SpikeSlabPrior(), SpikeSlabPrior(kind="laplace", alpha=30.0), UniformPrior()])
def test_differentiable_rate_equals_the_discrete_rate(prior):
    q = UpdateQuantizer(16, 0.005)
    rng = np.random.default_rng(0)
    k = rng.integers(q.k_min, q.k_max + 1, 500)
    k[:3] = [q.k_min, q.k_max, 0]
    bits = float(prior.bits_tf(tf.constant(k * 0.005, tf.float32), q))
    coder = UpdateCoder(q, prior)
    assert bits == pytest.approx(coder.estimated_bits(k), rel=1e-4)


def test_rate_gradient_pulls_updates_towards_zero():
    q = UpdateQuantizer(64, 0.005)
    prior = SpikeSlabPrior()
    delta = tf.Variable([0.011, -0.011, 0.031, -0.052])
    with tf.GradientTape() as tape:
        bits = prior.bits_tf(q.quantize_ste(delta), q)
    g = tape.gradient(bits, delta).numpy()
    assert np.all(np.sign(g) == np.sign(delta.numpy()))      # descent shrinks |delta|


def _weights(rng, sparsity=0.05, scale=0.01):
    old = [rng.normal(size=(5, 5, 16, 16)).astype(np.float32), rng.normal(size=16).astype(np.float32),
           rng.normal(size=(2, 3, 1)).astype(np.float32)]
    new = [o + (rng.normal(0, scale, o.shape) * (rng.random(o.shape) < sparsity)).astype(np.float32) for o in old]
    return old, new


@pytest.mark.parametrize("bins", [2, 64, 256])
@pytest.mark.parametrize("prior", ["spike_slab", "uniform"])
def test_update_round_trips_and_bits_follow_eq_19(bins, prior):
    rng = np.random.default_rng(bins)
    old, new = _weights(rng)
    coder = UpdateCoder(UpdateQuantizer(bins, 0.005), make_prior(prior))
    coded = coder.encode(old, new)
    back = coder.decode(old, coded.data)
    for b, qz, o in zip(back, coded.quantized, old):
        assert b.dtype == np.float32 and b.shape == o.shape
        assert np.array_equal(b.view(np.uint32), qz.view(np.uint32))     # bit for bit
    k = np.concatenate([coder.quantizer.indices(n.astype(np.float64) - o).ravel() for o, n in zip(old, new)])
    assert coded.nonzero == np.count_nonzero(k) > 0 and coded.num_weights == k.size
    assert coded.estimated_bits <= coded.bits <= 1.01 * coded.estimated_bits + 64


def test_spike_and_slab_codes_a_sparse_update_far_cheaper_than_uniform():
    rng = np.random.default_rng(9)
    old, new = _weights(rng, sparsity=0.02)
    q = UpdateQuantizer(64, 0.005)
    ss = UpdateCoder(q, SpikeSlabPrior()).encode(old, new)
    un = UpdateCoder(q, UniformPrior()).encode(old, new)
    assert un.bits == pytest.approx(ss.num_weights * 6, abs=64)          # log2 64 bits per weight
    assert ss.bits < 0.25 * un.bits
    # and decoding under the wrong prior does not give the update back
    wrong = UpdateCoder(q, UniformPrior()).decode(old, ss.data)
    assert not all(np.array_equal(a, b) for a, b in zip(wrong, ss.quantized))


def test_mismatched_weight_lists_are_refused():
    coder = UpdateCoder(UpdateQuantizer(), SpikeSlabPrior())
    with pytest.raises(ValueError, match="shape"):
        coder.encode([np.zeros(3)], [np.zeros(4)])
    with pytest.raises(ValueError, match="length"):
        coder.encode([np.zeros(3)], [])
