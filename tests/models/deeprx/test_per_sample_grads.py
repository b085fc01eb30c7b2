"""Batched per-sample gradients and the XLA forward of DeepRx against independent references:
per-sample gradients equal one GradientTape per sample; the XLA forward (shifted depthwise sums)
equals TensorFlow's depthwise convolution; the tapped forward equals ``tf.nn.separable_conv2d``."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.deeprx.influence import ParamFlattener, per_sample_gradients
from models.deeprx.model import LOSSES, DeepRx, DeepRxConfig, depthwise_shifted
from tests.models.deeprx.conftest import TINY, random_batch

# dilations over both axes, a widening block (1x1 skip), 3 output bits
CFG = dict(num_rx_ant=1, max_bits_per_symbol=3, input_filters=3, blocks=((3, 1, 1), (4, 2, 3), (4, 1, 2)))


def one_at_a_time(model: DeepRx, loss: str, params, batch) -> np.ndarray:
    """The reference: one GradientTape per sample, [n, num_params]."""
    fn, rows = model.per_sample_loss(loss), []
    for i in range(int(batch["x"].shape[0])):
        sample = {k: v[i:i + 1] for k, v in batch.items()}
        with tf.GradientTape() as tape:
            tape.watch(params)
            value = tf.reduce_sum(fn(params, sample))
        rows.append(ParamFlattener(params).flatten(tape.gradient(value, params)).numpy())
    return np.stack(rows)


@pytest.mark.parametrize("norm", ["layer", "none"])
@pytest.mark.parametrize("loss", ["bce", "soft_ber"])
def test_batched_per_sample_gradients_equal_one_tape_per_sample(norm, loss):
    cfg = DeepRxConfig(**CFG, norm=norm, dtype="float64")
    model = DeepRx(cfg, seed=3)
    rng = np.random.default_rng(1)
    for v in model.params:                     # non-trivial norms and biases
        v.assign(v + rng.normal(0, 0.3, v.shape))
    batch = random_batch(rng, 5, cfg, num_sym=7, num_sc=10)
    params = [tf.constant(v) for v in model.params]
    fast = per_sample_gradients(model.per_sample_loss(loss), ParamFlattener(params))
    assert fast is model.per_sample_loss(loss).per_sample_gradients          # the model's own path is taken
    got = fast(params, batch).numpy()
    want = one_at_a_time(model, loss, params, batch)
    assert got.shape == want.shape == (5, model.num_parameters())
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # a sample's gradient does not depend on the rest of the batch
    np.testing.assert_allclose(fast(params, {k: v[2:3] for k, v in batch.items()}).numpy()[0], want[2],
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dil", [(1, 1), (2, 3), (3, 1)])
def test_shifted_depthwise_equals_tensorflow(dil):
    rng = np.random.default_rng(0)
    h = tf.constant(rng.standard_normal((2, 7, 11, 4)))
    kernel = tf.constant(rng.standard_normal((3, 3, 4, 1)))
    want = tf.nn.depthwise_conv2d(h, kernel, [1, 1, 1, 1], "SAME", dilations=dil)
    np.testing.assert_allclose(depthwise_shifted(h, kernel, dil).numpy(), want.numpy(), rtol=1e-12, atol=1e-12)


def test_xla_forward_equals_plain_forward():
    model = DeepRx(DeepRxConfig(**CFG), seed=0)
    x = random_batch(np.random.default_rng(2), 3, model.config, num_sym=14, num_sc=12)["x"]
    plain = model.forward(x).numpy()
    compiled = tf.function(lambda t: model.forward(t, xla=True), jit_compile=True)(x).numpy()
    np.testing.assert_allclose(compiled, plain, rtol=1e-4, atol=1e-5)


def test_tapped_forward_is_separable_conv2d():
    """The forward splits each separable convolution to tap its middle; the values are TensorFlow's
    ``separable_conv2d`` bit for bit (same kernels, same order)."""
    model = DeepRx(DeepRxConfig(**TINY), seed=0)
    h = tf.constant(np.random.default_rng(3).standard_normal((2, 5, 8, 3)), tf.float32)
    dw, pw = tf.constant(np.random.default_rng(4).standard_normal((3, 3, 3, 1)), tf.float32), \
        tf.constant(np.random.default_rng(5).standard_normal((1, 1, 3, 4)), tf.float32)
    split = tf.nn.conv2d(tf.nn.depthwise_conv2d(h, dw, [1, 1, 1, 1], "SAME", dilations=(2, 2)), pw, [1, 1, 1, 1],
                         "VALID")
    fused = tf.nn.separable_conv2d(h, dw, pw, strides=[1, 1, 1, 1], padding="SAME", dilations=(2, 2))
    assert np.array_equal(split.numpy(), fused.numpy())
    taps: list = []
    model.forward(random_batch(np.random.default_rng(6), 2, model.config)["x"], taps=taps)
    kinds = [t.kind for t in taps]
    assert kinds.count("depthwise") == 2 * len(TINY["blocks"]) and kinds.count("conv_nobias") == 1   # one widening
    assert sorted({t.first for t in taps} | {t.first + 1 for t in taps if t.kind in ("conv", "norm")}) == \
        list(range(len(model.params)))                                        # every parameter is tapped once
    assert set(LOSSES) == {"bce", "soft_ber"}
