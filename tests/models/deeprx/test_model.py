"""DeepRx receiver: parameter counts of the presets, shapes and validation, input features, loss
masks and masked losses on hand-built examples, per-sample separability, checkpoints, registry."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from models.deeprx.model import (DeepRx, DeepRxConfig, hard_ber, loss_mask, make_features, masked_bce,
                                 raw_ls_estimate, soft_ber)
from models.registry import get_model, registered
from tests.models.deeprx.conftest import TINY, random_batch


def expected_count(cfg: DeepRxConfig) -> int:
    """Parameters from the architecture description: input conv k x k with bias; per block two
    LayerNorms (scale + offset), two depthwise k x k + pointwise 1x1 (+ bias) convs, a 1x1 skip
    without bias when the width changes; output LayerNorm and 1x1 conv with bias."""
    k, c = cfg.kernel_size, cfg.input_filters
    n = k * k * cfg.num_input_channels * c + c
    for cout, _, _ in cfg.blocks:
        n += 2 * c + k * k * c + c * cout + cout + 2 * cout + k * k * cout + cout * cout + cout
        n += c * cout if c != cout else 0
        c = cout
    return n + 2 * c + c * cfg.max_bits_per_symbol + cfg.max_bits_per_symbol


def test_preset_parameter_counts():
    small, paper = DeepRx(DeepRxConfig.preset("small")), DeepRx(DeepRxConfig.preset("paper"))
    print(f"deeprx parameters: small {small.num_parameters():,}, paper {paper.num_parameters():,}")
    assert small.num_parameters() == expected_count(small.config) < 20_000
    assert paper.num_parameters() == expected_count(paper.config)
    assert 1.1e6 < paper.num_parameters() < 1.3e6             # DeepRx: ~1.2 M
    assert len(paper.config.blocks) == 11
    no_norm = DeepRx(DeepRxConfig.preset("small", norm="none"))
    assert small.num_parameters() - no_norm.num_parameters() == 2 * (
        sum(2 * b[0] for b in small.config.blocks) + small.config.input_filters)   # 2 norms a block + output norm


def test_shapes_dtype_and_validation():
    m = DeepRx(DeepRxConfig(**TINY))
    x = random_batch(np.random.default_rng(0), 3, m.config, num_sym=14, num_sc=12)["x"]
    llr = m(x)
    assert tuple(llr.shape) == (3, 14, 12, 2) and llr.dtype == tf.float32
    assert DeepRx(DeepRxConfig(**TINY, dtype="float64"))(tf.cast(x, tf.float64)).dtype == tf.float64
    with pytest.raises(ValueError, match=r"\[batch, sym, sc, 7\], got \(3, 14, 12, 5\)"):
        m(x[..., :5])
    with pytest.raises(ValueError, match="unknown deeprx config keys \\['filters'\\]"):
        DeepRxConfig.from_dict({"filters": 3})
    with pytest.raises(ValueError, match="valid: small, paper"):
        DeepRxConfig.preset("huge")
    with pytest.raises(ValueError, match="kernel_size must be odd, got 4"):
        DeepRxConfig(kernel_size=4)
    with pytest.raises(ValueError, match="norm must be 'layer' or 'none', got 'batch'"):
        DeepRxConfig(norm="batch")
    with pytest.raises(ValueError, match="weights do not fit this deeprx config: missing \\['block0/skip'\\]"):
        DeepRx(DeepRxConfig(**{**TINY, "input_filters": 4})).set_weights(m.get_weights())
    with pytest.raises(ValueError, match="more parameter tensors"):
        m.forward(x, list(m.params) + [tf.zeros([1])])


def test_features_ls_estimate_and_noise_channel():
    rng = np.random.default_rng(2)
    h = (rng.standard_normal((2, 2, 1, 6)) + 1j * rng.standard_normal((2, 2, 1, 6))).astype(np.complex64)
    pilots = np.zeros((2, 3, 6), np.complex64)
    pilots[:, 1, ::2] = np.exp(1j * rng.uniform(0, 2 * np.pi, (2, 3)))
    pilots[:, 1, 1] = 0.5 - 0.5j                                      # a non-unit-power pilot too
    x_sym = np.exp(1j * rng.uniform(0, 2 * np.pi, (2, 3, 6))).astype(np.complex64)
    x_sym[:, 1] = pilots[:, 1]
    y = h * x_sym[:, None]                                            # noiseless: LS = h on pilot REs
    h_ls = raw_ls_estimate(y, pilots).numpy()
    on = np.abs(pilots) > 0
    assert np.allclose(h_ls[:, :, 1][np.broadcast_to(on[:, None, 1], h_ls[:, :, 1].shape)],
                       np.broadcast_to(h, (2, 2, 3, 6))[:, :, 1][np.broadcast_to(on[:, None, 1], (2, 2, 6))], atol=1e-6)
    assert np.all(h_ls[np.broadcast_to(~on[:, None], h_ls.shape)] == 0)
    no = np.array([0.1, 0.01], np.float32)
    x = make_features(y, pilots, no).numpy()
    assert x.shape == (2, 3, 6, 4 * 2 + 3)
    assert np.allclose(x[..., 0:2], np.moveaxis(y.real, 1, -1)) and np.allclose(x[..., 2:4], np.moveaxis(y.imag, 1, -1))
    assert np.allclose(x[..., 4:6], np.moveaxis(h_ls.real, 1, -1), atol=1e-6)
    assert np.allclose(x[..., 8] + 1j * x[..., 9], pilots)
    assert np.allclose(x[0, ..., 10], -1.0) and np.allclose(x[1, ..., 10], -2.0)     # log10(no)


def test_loss_mask_covers_data_res_and_valid_bits():
    data_re = np.ones((2, 3, 4), bool)
    data_re[:, 1] = False
    mask = loss_mask(data_re, [2, 4], 6).numpy()
    assert mask.shape == (2, 3, 4, 6)
    assert mask[0].sum() == 2 * 4 * 2 and mask[1].sum() == 2 * 4 * 4
    assert np.all(mask[:, 1] == 0) and np.all(mask[0, ..., 2:] == 0) and np.all(mask[1, 0, 0] == [1, 1, 1, 1, 0, 0])
    with pytest.raises(ValueError, match="bits_per_symbol must be in 1..6, got \\[2, 8\\]"):
        loss_mask(data_re, [2, 8], 6)


def test_masked_bce_on_a_hand_built_example():
    """Two samples, 1 x 3 REs x 2 bits. Sample 0: QPSK-like (both bits valid), RE 1 is a pilot;
    sample 1: BPSK (bit 1 invalid), all REs data. Masked-out entries carry huge wrong LLRs that
    would dominate if they leaked in."""
    llr = np.array([[[[2.0, -1.0], [-50.0, 50.0], [0.0, 3.0]]],
                    [[[-0.5, 80.0], [1.5, -80.0], [4.0, 80.0]]]])       # [2, 1, 3, 2]
    bits = np.array([[[[1, 1], [1, 0], [0, 0]]],
                     [[[1, 0], [1, 1], [0, 0]]]], np.float64)
    mask = loss_mask(np.array([[[True, False, True]], [[True, True, True]]]), [2, 1], 2, "float64")
    # BCE with logit l and label b: log(1 + exp(-l)) if b = 1, log(1 + exp(l)) if b = 0
    sp = lambda z: math.log1p(math.exp(z))  # noqa: E731
    s0 = (sp(-2.0) + sp(1.0) + sp(0.0) + sp(3.0)) / 4
    s1 = (sp(0.5) + sp(-1.5) + sp(4.0)) / 3
    got = masked_bce(tf.constant(llr), bits, mask).numpy()
    assert got == pytest.approx([s0, s1], rel=1e-12)
    # soft BER: P(wrong) = sigmoid(-(2b - 1) l); hard BER: sign errors over the masked entries
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    assert soft_ber(tf.constant(llr), bits, mask).numpy() == pytest.approx(
        [(sig(-2.0) + sig(1.0) + sig(0.0) + sig(3.0)) / 4, (sig(0.5) + sig(-1.5) + sig(4.0)) / 3], rel=1e-12)
    assert hard_ber(tf.constant(llr), bits, mask).numpy() == pytest.approx([2 / 4, 2 / 3])
    # soft BER tends to the hard BER as the LLRs grow (no LLR is exactly 0 here)
    llr2 = np.where(llr == 0, 0.7, llr)
    assert soft_ber(tf.constant(1e3 * llr2), bits, mask).numpy() == pytest.approx(
        hard_ber(tf.constant(llr2), bits, mask).numpy(), abs=1e-12)


def test_per_sample_losses_are_separable():
    """Influence needs each sample's loss to depend on that sample only (LayerNorm, no BatchNorm)."""
    m = DeepRx(DeepRxConfig(**TINY), seed=1)
    rng = np.random.default_rng(3)
    a, b = random_batch(rng, 4, m.config), random_batch(rng, 4, m.config)
    loss = m.per_sample_loss("bce")
    mixed = {k: tf.concat([a[k][:2], b[k][2:]], 0) for k in a}
    la, lm = loss(m.params, a).numpy(), loss(m.params, mixed).numpy()
    assert np.allclose(la[:2], lm[:2], rtol=1e-6) and not np.allclose(la[2:], lm[2:], rtol=1e-3)
    singles = np.concatenate([loss(m.params, {k: v[i:i + 1] for k, v in a.items()}).numpy() for i in range(4)])
    assert np.allclose(singles, la, rtol=1e-6)


def test_a_few_adam_steps_lower_the_masked_bce():
    """The bits are a fixed function of the input (sign of the received real part), so a few
    steps on one batch must lower the loss."""
    m = DeepRx(DeepRxConfig(**TINY), seed=2)
    batch = random_batch(np.random.default_rng(4), 8, m.config)
    bit = tf.cast(batch["x"][..., 0:1] > 0, tf.float32)
    batch["bits"] = tf.concat([bit, 1.0 - bit], axis=-1)
    loss = m.per_sample_loss("bce")
    opt = tf.keras.optimizers.Adam(0.02)
    before = float(tf.reduce_mean(loss(m.params, batch)))
    for _ in range(30):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss(m.params, batch))
        opt.apply_gradients(zip(tape.gradient(value, m.params), m.params))
    assert float(tf.reduce_mean(loss(m.params, batch))) < 0.7 * before


def test_checkpoint_round_trip_and_registry(tmp_path):
    m = DeepRx(DeepRxConfig(**TINY), seed=5)
    x = random_batch(np.random.default_rng(0), 2, m.config)["x"]
    path = m.save(tmp_path / "rx.json", training={"samples": 0})
    back = DeepRx.load(path, seed=99)
    assert back.config == m.config and back.param_names == m.param_names
    assert np.array_equal(back(x).numpy(), m(x).numpy())
    assert not np.array_equal(DeepRx(DeepRxConfig(**TINY), seed=99)(x).numpy(), m(x).numpy())
    other = DeepRx(DeepRxConfig(**{**TINY, "max_bits_per_symbol": 4}))
    with pytest.raises(ValueError, match="weight output/kernel: shape \\(1, 1, 4, 2\\) != expected \\(1, 1, 4, 4\\)"):
        other.set_weights(m.get_weights())
    assert "deeprx" in registered() and get_model("deeprx") is DeepRx
