"""The TM scheme (translation / retranslation around a frozen codec): identity at init, training
that moves only T and R and lowers the RD loss, streams through the backbone's LatentCoder, and
module checkpoints. The slow test measures TM on the committed 32x32 codec in a shifted domain
(CDL-A, 100 ns) against the frozen backbone."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.csi_codec.bitstream import LatentCoder
from models.csi_codec.model import ConvCsiCodec, ConvCsiConfig
from models.csi_codec.translation import (TranslatedCodec, TranslationConfig, TranslationFineTuner,
                                          TranslationModules, translated_rd_loss)
from models.csi_codec.update_coder import SpikeSlabPrior, UpdateCoder, UpdateQuantizer
from tests.conftest import REPO
from tests.models.csi_codec.conftest import few_path_csi

CHECKPOINT = REPO / "models" / "checkpoints" / "csi_conv_cdl_c_32x32.json"
SMALL = ConvCsiConfig(num_ant=8, num_sc=8, filters=4)


def _bits(ws) -> list[np.ndarray]:
    return [np.asarray(w).view(np.uint32).copy() for w in ws]


@pytest.fixture
def backbone() -> ConvCsiCodec:
    return ConvCsiCodec(SMALL, seed=1)


@pytest.mark.parametrize("which", ["tiny", "committed"])
def test_identity_at_init_reproduces_the_backbone_exactly(which, backbone):
    if which == "committed":
        backbone = ConvCsiCodec.load(CHECKPOINT)
    cfg = backbone.config
    x = few_path_csi(np.random.default_rng(0), 16, cfg.num_ant, cfg.num_sc)
    tc = TranslatedCodec(backbone, TranslationModules(TranslationConfig(channels=4)))
    sym, est = tc.compress(x)
    sym_b, est_b = backbone.compress(x)
    assert sym.dtype == np.int32 and np.array_equal(sym, sym_b)
    assert np.array_equal(est.view(np.uint32), est_b.view(np.uint32))
    assert np.array_equal(tc.decompress(sym).view(np.uint32), backbone.decompress(sym_b).view(np.uint32))
    x_hat, bits = tc.forward(x, training=False)
    x_hat_b, bits_b = backbone.forward(x, training=False)
    np.testing.assert_array_equal(x_hat.numpy(), x_hat_b.numpy())
    np.testing.assert_array_equal(bits.numpy(), bits_b.numpy())


def test_fine_tuning_moves_only_t_and_r_and_lowers_the_rd_loss(backbone):
    rng = np.random.default_rng(1)
    x = 3.0 * few_path_csi(rng, 64, 8, 8, paths=1)        # a domain it never saw: 9x the power
    tc = TranslatedCodec(backbone, TranslationModules(TranslationConfig(channels=4)))
    frozen = _bits(backbone.trainable_variables)
    t0, r0 = _bits(tc.encoder_side_variables), _bits(tc.decoder_side_variables)
    lmbda = 100.0
    before = float(translated_rd_loss(tc, x, lmbda, training=False)["loss"])
    tuner = TranslationFineTuner(tc, lmbda, learning_rate=1e-2)
    tuner.run(x, steps=100, batch=32, rng=rng)
    after = float(translated_rd_loss(tc, x, lmbda, training=False)["loss"])

    assert len(frozen) == len(backbone.trainable_variables)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, _bits(backbone.trainable_variables)))
    assert {id(v) for v in tuner.variables} == {id(v) for v in tc.encoder_side_variables + tc.decoder_side_variables}
    # both T and R changed (gradients reach both), the RD loss of the same samples went down
    assert not all(np.array_equal(a, b) for a, b in zip(t0, _bits(tc.encoder_side_variables)))
    assert not all(np.array_equal(a, b) for a, b in zip(r0, _bits(tc.decoder_side_variables)))
    assert after < 0.95 * before


def test_translated_symbols_round_trip_through_the_backbone_latent_coder(backbone):
    rng = np.random.default_rng(2)
    x = few_path_csi(rng, 12, 8, 8)
    tc = TranslatedCodec(backbone, TranslationModules(TranslationConfig(channels=4)))
    TranslationFineTuner(tc, 100.0, learning_rate=1e-2).run(x, steps=5, batch=12, rng=rng)
    sym, est = tc.compress(x)
    coder = LatentCoder(backbone.probability_tables(), backbone.config.latent_shape)
    coded = coder.encode(sym)
    back = coder.decode(coded.data, len(x))
    assert np.array_equal(back, sym)
    assert np.array_equal(tc.decompress(back), tc.decompress(sym))
    assert coded.bits <= 1.01 * est.sum() + 64


def test_module_checkpoint_round_trips_and_refuses_a_codec_checkpoint(tmp_path, backbone):
    modules = TranslationModules(TranslationConfig(channels=3, num_convs=4, seed=7))
    for v in modules.trainable_variables:
        v.assign_add(tf.fill(v.shape, 0.01))
    path = modules.save(tmp_path / "tm.json", training={"steps": 1})
    back = TranslationModules.load(path)
    assert back.config == modules.config
    assert all(np.array_equal(a, back.get_weights()[k]) for k, a in modules.get_weights().items())
    with pytest.raises(ValueError, match="csi_translation"):
        TranslationModules.load(backbone.save(tmp_path / "codec.json"))
    with pytest.raises(ValueError, match="unknown csi_translation config keys"):
        TranslationConfig.from_dict({"channels": 2, "layers": 3})


def test_parameter_counts_and_update_bits():
    modules = TranslationModules(TranslationConfig(channels=8, kernel_size=3, num_convs=3))
    # 2->8, 8->8, 8->2 convs of 3x3 with biases
    n = (9 * 2 * 8 + 8) + (9 * 8 * 8 + 8) + (9 * 8 * 2 + 2)
    assert modules.num_parameters() == {"translation": n, "retranslation": n}
    coder = UpdateCoder(UpdateQuantizer(64, 0.005), SpikeSlabPrior())
    at_init = modules.retranslation_update(coder)
    assert at_init.num_weights == n and at_init.nonzero == 0
    modules.retranslation_weights[-1].assign([0.02, -0.01])
    moved = modules.retranslation_update(coder)
    assert moved.nonzero == 2 and moved.bits > at_init.bits
    modules.reset()
    assert modules.retranslation_update(coder).nonzero == 0


def test_config_is_validated():
    for bad in ({"channels": 0}, {"kernel_size": 2}, {"num_convs": 1}, {"seed": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TranslationConfig(**bad)


@pytest.mark.slow
def test_tm_on_the_committed_codec_in_a_shifted_domain(capsys):
    """The committed CDL-C 32x32 codec (lambda 300) in CDL-A (100 ns): TM fine-tuned on 200
    samples for 200 steps, evaluated on 500 held-out ones against the frozen backbone. Prints the
    numbers (run with -s); ~20 s on 2 cores."""
    from simulator.datagen.csi import CsiDataConfig, draw_shard
    from models.csi_codec.train import evaluate

    lmbda, n_tune = 300.0, 200
    x = draw_shard(CsiDataConfig(source="cdl", cdl_profile="A", delay_spread_ns=100.0), 700, seed=11)["x"]
    x_tune, x_test = x[:n_tune], x[n_tune:]
    backbone = ConvCsiCodec.load(CHECKPOINT)
    tc = TranslatedCodec(backbone, TranslationModules(TranslationConfig(channels=8, kernel_size=3, num_convs=3)))
    frozen = evaluate(backbone, x_test, lmbda)
    TranslationFineTuner(tc, lmbda, learning_rate=3e-3).run(x_tune, steps=200, batch=32, rng=np.random.default_rng(0))
    tm = evaluate(tc, x_test, lmbda)
    # what sending R would cost (the paper counts zero) and what the gNB would get from those bits
    update = tc.modules.retranslation_update(UpdateCoder(UpdateQuantizer(64, 0.005), SpikeSlabPrior()))
    trained_r = [v.numpy() for v in tc.decoder_side_variables]
    for v, q in zip(tc.decoder_side_variables, update.quantized):
        v.assign(q)
    tm_q = evaluate(tc, x_test, lmbda)
    for v, w in zip(tc.decoder_side_variables, trained_r):
        v.assign(w)
    with capsys.disabled():
        print(f"\nTM on CDL-A 100 ns ({len(x_test)} held-out, {n_tune} tuning samples), params {tc.modules.num_parameters()}")
        for name, m in (("frozen backbone", frozen), ("TM (R free)", tm), ("TM (R quantised)", tm_q)):
            print(f"  {name:18s} NMSE {m['nmse_db']:7.2f} dB  rate {m['rate_estimated']:.4f} est, "
                  f"{m['rate_coded_one_stream']:.4f} coded bit/dim  loss {m['loss']:.1f}")
        print(f"  R update: {update.bits} bits ({update.nonzero}/{update.num_weights} non-zero), "
              f"{update.bits / (backbone.config.csi_dims * len(x_test)):.4f} bit/dim over {len(x_test)} reports")
    assert tm["loss"] < frozen["loss"] and tm["nmse_db"] < frozen["nmse_db"] - 1.0
