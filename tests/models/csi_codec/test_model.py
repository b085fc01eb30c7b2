"""The conv codec: architecture (Table V sizes), shapes, config validation, losses (eq. 9, 11,
21), training, checkpoints and the registry."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.csi_codec.model import ConvCsiCodec, ConvCsiConfig, full_model_loss, nmse_db, rd_loss
from models.csi_codec.train import RdTrainer
from models.csi_codec.update_coder import SpikeSlabPrior, UniformPrior, UpdateQuantizer
from models.registry import get_model, registered
from tests.models.csi_codec.conftest import few_path_csi

SMALL = dict(filters=8)


@pytest.fixture(scope="module")
def codec():
    return ConvCsiCodec(ConvCsiConfig.preset("32x32", **SMALL), seed=1)


def test_parameter_counts_match_the_paper_table_v():
    m = ConvCsiCodec(ConvCsiConfig.preset("64x64"))
    n = m.num_parameters()
    # 5x5 kernels: 2->64, 64->64, 64->2 with biases, on both sides (Table V: 109 K and 218 K)
    assert n["encoder"] == n["decoder"] == 2 * 64 * 25 + 64 + 64 * 64 * 25 + 64 + 64 * 2 * 25 + 2
    assert round((n["encoder"] + n["decoder"]) / 1000) == 218


@pytest.mark.parametrize("preset,latent", [("32x32", (8, 8)), ("64x64", (16, 16))])
def test_shapes(preset, latent):
    cfg = ConvCsiConfig.preset(preset, **SMALL)
    m = ConvCsiCodec(cfg)
    x = few_path_csi(np.random.default_rng(0), 3, cfg.num_ant, cfg.num_sc)
    y = m.encode(x)
    assert tuple(y.shape) == (3, *latent, 2) and cfg.latent_shape == latent
    x_hat, bits = m.forward(x)
    assert tuple(x_hat.shape) == x.shape and tuple(bits.shape) == (3,)
    sym, est = m.compress(x)
    assert sym.dtype == np.int32 and sym.shape == (3, *latent, 2) and est.shape == (3,)
    assert m.decompress(sym).shape == x.shape


def test_config_validation_names_the_bad_value():
    with pytest.raises(ValueError, match="num_ant 30 and num_sc 32 must be multiples of 2\\*\\*num_pools = 4"):
        ConvCsiConfig(num_ant=30, num_sc=32)
    with pytest.raises(ValueError, match="unknown conv_csi config keys \\['filter'\\]"):
        ConvCsiConfig.from_dict({"filter": 3})
    with pytest.raises(ValueError, match="valid: 32x32, 64x64, 256x256"):
        ConvCsiConfig.preset("48x48")
    with pytest.raises(ValueError, match="\\[batch, 32, 32, 2\\]"):
        ConvCsiCodec(ConvCsiConfig(**SMALL)).forward(np.zeros((1, 32, 16, 2), np.float32))


def test_nmse_db_known_answers():
    x = few_path_csi(np.random.default_rng(0), 4)
    assert float(nmse_db(x, 0.9 * x)) == pytest.approx(-20.0, abs=1e-4)     # ||0.1 x||^2 / ||x||^2
    assert float(nmse_db(x, np.zeros_like(x))) == pytest.approx(0.0, abs=1e-6)


def test_rd_loss_terms(codec):
    x = few_path_csi(np.random.default_rng(2), 6)
    terms = rd_loss(codec, x, lmbda=10.0, training=False)
    x_hat = codec.decompress(codec.compress(x)[0])
    dims = 32 * 32
    assert float(terms["rate"]) == pytest.approx(codec.compress(x)[1].mean() / dims, rel=1e-5)
    assert float(terms["distortion"]) == pytest.approx(np.sum((x - x_hat) ** 2) / 6 / dims, rel=1e-4)
    assert float(terms["loss"]) == pytest.approx(float(terms["rate"]) + 10 * float(terms["distortion"]), rel=1e-6)
    # inference is deterministic, training draws noise
    assert float(rd_loss(codec, x, 10.0, training=False)["rate"]) == float(terms["rate"])
    assert float(rd_loss(codec, x, 10.0)["rate"]) != float(rd_loss(codec, x, 10.0)["rate"])


def test_compress_does_not_depend_on_the_batch(codec):
    x = few_path_csi(np.random.default_rng(3), 5)
    sym, est = codec.compress(x)
    for i in range(5):
        s1, e1 = codec.compress(x[i:i + 1])
        assert np.array_equal(s1[0], sym[i])
        assert e1[0] == pytest.approx(est[i], rel=1e-6)


def test_rd_training_lowers_the_loss():
    m = ConvCsiCodec(ConvCsiConfig.preset("32x32", **SMALL), seed=4)
    x = few_path_csi(np.random.default_rng(4), 256)
    held = few_path_csi(np.random.default_rng(5), 64)
    before = {k: float(v) for k, v in rd_loss(m, held, 20.0, training=False).items()}
    RdTrainer(m, lmbda=20.0, learning_rate=3e-3).run(x, steps=120, batch=32, rng=np.random.default_rng(0))
    after = {k: float(v) for k, v in rd_loss(m, held, 20.0, training=False).items()}
    assert after["loss"] < 0.95 * before["loss"], (before, after)
    assert after["rate"] < before["rate"]


@pytest.mark.parametrize("prior", [SpikeSlabPrior(), UniformPrior()])
def test_full_model_loss_adds_the_update_rate(codec, prior):
    x = few_path_csi(np.random.default_rng(6), 4)
    q = UpdateQuantizer(64, 0.005)
    old = [v.numpy() for v in codec.decoder_side_variables]
    n = sum(o.size for o in old)
    terms = full_model_loss(codec, x, old, q, prior, lmbda=10.0, beta=2.0, reports_per_update=50, training=False)
    zero_bits = float(prior.bits_tf(tf.zeros([n]), q))
    assert float(terms["update_bits"]) == pytest.approx(zero_bits, rel=1e-5)
    rd = rd_loss(codec, x, 10.0, training=False)
    assert float(terms["loss"]) == pytest.approx(float(rd["loss"]) + 2.0 * zero_bits / (1024 * 50), rel=1e-5)
    # gradients reach every decoder-side weight through the quantiser (straight through)
    with tf.GradientTape() as tape:
        loss = full_model_loss(codec, x, old, q, prior, 10.0, 2.0, 50, training=False)["loss"]
    grads = tape.gradient(loss, codec.decoder_side_variables)
    assert all(g is not None for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads[:len(codec.decoder_weights)]) > 0


def test_full_model_loss_sees_the_quantised_decoder(codec):
    """A change smaller than half a bin quantises to no change: the loss is unchanged."""
    x = few_path_csi(np.random.default_rng(7), 4)
    q = UpdateQuantizer(64, 0.005)
    old = [v.numpy() for v in codec.decoder_side_variables]
    base = float(full_model_loss(codec, x, old, q, SpikeSlabPrior(), 10.0, 1.0, 10, training=False)["loss"])
    shifted = [o + 0.001 for o in old]                     # < t / 2 everywhere
    moved = float(full_model_loss(codec, x, shifted, q, SpikeSlabPrior(), 10.0, 1.0, 10, training=False)["loss"])
    # with old := current + 0.001, delta = -0.001 rounds to 0, so the decoder used is `shifted`
    assert moved != base
    for v, o in zip(codec.decoder_side_variables, old):
        v.assign(o + 0.002)
    try:
        same = float(full_model_loss(codec, x, old, q, SpikeSlabPrior(), 10.0, 1.0, 10, training=False)["loss"])
    finally:
        for v, o in zip(codec.decoder_side_variables, old):
            v.assign(o)
    assert same == pytest.approx(base, rel=1e-6)


def test_checkpoint_round_trip_and_registry(tmp_path, codec):
    path = codec.save(tmp_path / "csi.json", training={"steps": 0})
    assert "conv_csi" in registered()
    back = get_model("conv_csi").load(path)
    assert type(back) is ConvCsiCodec and back.config == codec.config
    w0, w1 = codec.get_weights(), back.get_weights()
    assert set(w0) == set(w1) and all(np.array_equal(w0[k], w1[k]) for k in w0)
    x = few_path_csi(np.random.default_rng(8), 3)
    assert np.array_equal(codec.compress(x)[0], back.compress(x)[0])
    other = ConvCsiCodec(ConvCsiConfig.preset("32x32", filters=4))
    with pytest.raises(ValueError, match="shape"):
        other.set_weights(w0)


def test_fine_tuner_reset_keeps_the_learning_rate_and_clears_the_moments():
    from models.csi_codec.train import FullModelFineTuner

    m = ConvCsiCodec(ConvCsiConfig.preset("32x32", filters=4), seed=2)
    tuner = FullModelFineTuner(m, UpdateQuantizer(64, 0.005), SpikeSlabPrior(), 10.0, 1.0, 10, learning_rate=1e-3)
    x = few_path_csi(np.random.default_rng(9), 8)
    old = [v.numpy() for v in m.decoder_side_variables]
    tuner.run(x, old, steps=2, batch=4)
    assert int(tuner.optimizer.iterations) == 2
    assert any(float(tf.reduce_max(tf.abs(v))) > 0 for v in tuner.optimizer._momentums)
    tuner.reset_optimizer()
    assert int(tuner.optimizer.iterations) == 0
    assert all(float(tf.reduce_max(tf.abs(v))) == 0 for v in tuner.optimizer._momentums)
    assert float(tuner.optimizer.learning_rate) == pytest.approx(1e-3)
    moved = [v.numpy() for v in m.decoder_side_variables]
    assert any(not np.array_equal(a, b) for a, b in zip(old, moved))


def test_update_rate_term_sparsifies_the_decoder_update():
    """Eq. 21's purpose: with beta = 0 almost every decoder-side weight moves by a bin or more;
    with a large beta the spike-and-slab rate keeps the update (nearly) empty."""
    from models.csi_codec.train import FullModelFineTuner
    from models.csi_codec.update_coder import UpdateCoder

    x = few_path_csi(np.random.default_rng(1), 64, paths=1)
    q, prior = UpdateQuantizer(64, 0.005), SpikeSlabPrior()
    nonzero, bits = {}, {}
    for beta in (0.0, 1000.0):
        m = ConvCsiCodec(ConvCsiConfig.preset("32x32", filters=8), seed=3)
        old = [v.numpy() for v in m.decoder_side_variables]
        FullModelFineTuner(m, q, prior, lmbda=20.0, beta=beta, reports_per_update=10, learning_rate=3e-3).run(
            x, old, steps=30, batch=16, rng=np.random.default_rng(0))
        coded = UpdateCoder(q, prior).encode(old, [v.numpy() for v in m.decoder_side_variables])
        nonzero[beta], bits[beta] = coded.nonzero, coded.bits
    assert nonzero[0.0] > 0.5 * coded.num_weights
    assert nonzero[1000.0] < 0.1 * nonzero[0.0] and bits[1000.0] < 0.1 * bits[0.0]


def test_encoder_only_training_leaves_the_decoder_side_alone():
    m = ConvCsiCodec(ConvCsiConfig.preset("32x32", filters=4), seed=6)
    dec = [v.numpy() for v in m.decoder_side_variables]
    enc = [v.numpy() for v in m.encoder_side_variables]
    RdTrainer(m, 20.0, 1e-3, variables=m.encoder_side_variables).run(
        few_path_csi(np.random.default_rng(10), 16), steps=3, batch=8)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(dec, m.decoder_side_variables))
    assert any(not np.array_equal(a, v.numpy()) for a, v in zip(enc, m.encoder_side_variables))
