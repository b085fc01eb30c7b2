"""Online fine-tuning schemes of the CSI codec (models/csi_codec/online.py): what each scheme
changes on which end, when, and that the gNB only learns through bytes."""
from __future__ import annotations

import numpy as np
import pytest

from models.csi_codec.config import CsiOnlineConfig, CsiUpdateConfig
from models.csi_codec.model import ConvCsiConfig
from models.csi_codec.online import OnlineCsiCodec, flops_per_report
from tests.models.csi_codec.conftest import few_path_csi, save_tiny_codec


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """Trained on one-path CSI, so the four-path 'new environment' gives fine-tuning work to do."""
    return save_tiny_codec(tmp_path_factory.mktemp("ckpt") / "tiny.json")


def _online(scheme: str, **kw) -> CsiOnlineConfig:
    return CsiOnlineConfig(**{"scheme": scheme, "steps": 30, "batch": 16, "learning_rate": 3e-3, "ue_gflops": 1.0,
                              "update": {"bins": 64, "bin_width": 0.005, "prior": "spike_slab", "beta": 1.0}, **kw})


def _weights(variables) -> list[np.ndarray]:
    return [v.numpy().copy() for v in variables]


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def _shifted(n: int, seed: int = 5) -> np.ndarray:
    return few_path_csi(np.random.default_rng(seed), n, 8, 8, paths=4)     # a new environment: 4 paths


def test_flops_per_report_matches_the_papers_table_v_at_64x64():
    # 238 M multiply-accumulates for the 64x64 codec with 64 kernels (paper Table V: 475 M FLOPs)
    assert flops_per_report(ConvCsiConfig(num_ant=64, num_sc=64, filters=64)) == pytest.approx(476e6, rel=0.01)


def test_full_model_gnb_rebuilds_the_ues_decoder_from_the_update_bytes_only(tiny_checkpoint):
    link = OnlineCsiCodec(tiny_checkpoint, _online("full_model"), np.random.default_rng(0), reports_per_update=50)
    x = _shifted(64)
    gnb_before = _weights(link.gnb.codec.decoder_side_variables)
    ft = link.fine_tune(x)
    assert ft.update_bits == 8 * len(ft.payload) > 0 and 0 < ft.update_nonzero <= ft.update_weights
    # until the update arrives, nothing changed on either end: reports still decode exactly as before
    assert _same(_weights(link.gnb.codec.decoder_side_variables), gnb_before)
    rep = link.report(x[:1])
    assert np.isfinite(link.decode(rep)).all()
    ft.apply()
    ue_dec = _weights(link.ue.codec.decoder_side_variables)
    assert _same(_weights(link.gnb.codec.decoder_side_variables), ue_dec)
    assert not _same(ue_dec, gnb_before)
    # and the two ends' latent tables agree, so a report coded after the switch decodes
    rep = link.report(x[1:3])                   # two matrices (two UE antennas) in one stream
    assert np.array_equal(link.decode(rep), rep.x_expected) and rep.x_expected.shape == x[1:3].shape
    assert ft.compute_us == int(np.ceil(3 * flops_per_report(link.config) * 30 * 16 / 1e9 * 1e6))


def test_encoder_only_changes_only_the_ue_encoder_and_sends_nothing(tiny_checkpoint):
    link = OnlineCsiCodec(tiny_checkpoint, _online("encoder_only"), np.random.default_rng(0))
    enc0, dec0 = _weights(link.ue.codec.encoder_side_variables), _weights(link.gnb.codec.decoder_side_variables)
    ft = link.fine_tune(_shifted(64))
    assert ft.update_bits == 0 and ft.payload is None
    assert _same(_weights(link.ue.codec.encoder_side_variables), enc0)        # not before it is applied
    ft.apply()
    assert not _same(_weights(link.ue.codec.encoder_side_variables), enc0)
    assert _same(_weights(link.gnb.codec.decoder_side_variables), dec0)
    assert _same(_weights(link.ue.codec.decoder_side_variables), dec0)


def test_fine_tuning_on_the_new_environment_lowers_its_held_out_rd_loss(tiny_checkpoint):
    x_tune, x_test = _shifted(256, seed=5), _shifted(128, seed=6)
    for scheme in ("genie", "full_model", "encoder_only", "translation"):
        link = OnlineCsiCodec(tiny_checkpoint, _online(scheme, steps=80, learning_rate=1e-3), np.random.default_rng(0), 50)
        before = link._rd(link.ue.codec, x_test)         # inference RD loss (rounded latents), eq. 9
        ft = link.fine_tune(x_tune)
        assert ft.loss_after < ft.loss_before, (scheme, ft)
        ft.apply()
        after = link._rd(link.ue.codec, x_test)
        assert after < 0.98 * before, (scheme, before, after)
        assert np.isfinite(link.decode(link.report(x_test[:1]))).all()


def test_translation_trains_only_its_modules_and_hands_r_to_the_gnb(tiny_checkpoint):
    link = OnlineCsiCodec(tiny_checkpoint, _online("translation"), np.random.default_rng(0))
    backbone = _weights(link.work.backbone.trainable_variables)
    r0 = _weights(link.gnb.codec.decoder_side_variables)
    ft = link.fine_tune(_shifted(64))
    assert ft.update_bits == 0                                          # the paper's lower-bound rate for TM
    assert _same(_weights(link.work.backbone.trainable_variables), backbone)
    assert _same(_weights(link.gnb.codec.decoder_side_variables), r0)
    ft.apply()
    r1 = _weights(link.gnb.codec.decoder_side_variables)
    assert not _same(r1, r0) and _same(r1, _weights(link.ue.codec.decoder_side_variables))
    assert not _same(_weights(link.ue.codec.encoder_side_variables), _weights(link.gnb.codec.encoder_side_variables))


def test_none_never_fine_tunes(tiny_checkpoint):
    link = OnlineCsiCodec(tiny_checkpoint, CsiOnlineConfig(scheme="none"), np.random.default_rng(0))
    assert link.fine_tune(_shifted(8)) is None and link.work is None


@pytest.mark.parametrize("scheme", ["full_model", "genie"])
def test_a_report_encoded_before_an_update_is_decoded_with_the_decoder_it_was_encoded_for(tiny_checkpoint, scheme):
    # the report waits behind the update on the FIFO link (full_model) or is on the link when a free
    # update lands (genie): decoding it with the new decoder and tables would mix two models
    link = OnlineCsiCodec(tiny_checkpoint, _online(scheme), np.random.default_rng(0), reports_per_update=50)
    ref = OnlineCsiCodec(tiny_checkpoint, CsiOnlineConfig(scheme="none"), np.random.default_rng(0))   # the old model, never changed
    x = _shifted(64)
    ft = link.fine_tune(x)
    straddling = [link.report(x[i:i + 1]) for i in range(3)]
    ft.apply()
    after = link.report(x[3:4])
    assert [r.version for r in straddling] == [0, 0, 0] and after.version == 1
    new_dec = _weights(link.gnb.codec.decoder_side_variables)
    for r in straddling:
        old = ref.report(r.x)
        assert old.data == r.data                                   # encoded by the old model
        x_hat = link.decode(r)
        assert np.array_equal(x_hat, ref.decode(old))                # and decoded by it, bit for bit
        assert np.array_equal(x_hat, r.x_expected)                   # which is what the UE expected
    assert _same(_weights(link.gnb.codec.decoder_side_variables), new_dec)   # the gNB is back on the new one
    assert link._old_decoders == {} and link._undecoded == {1: 1}  # nothing kept once no report needs it
    assert np.isfinite(link.decode(after)).all()
    with pytest.raises(ValueError, match="decoded already"):
        link.decode(after)


def test_uniform_prior_with_the_configs_spike_slab_defaults_codes_an_update(tiny_checkpoint):
    update = CsiUpdateConfig(prior="uniform", bins=16)                     # alpha, sigma_slab filled in
    link = OnlineCsiCodec(tiny_checkpoint, _online("full_model", update=update), np.random.default_rng(0), 50)
    ft = link.fine_tune(_shifted(64))
    assert ft.update_bits > 0
    # uniform over 16 bins: every weight costs log2(16) = 4 bits
    assert ft.update_bits_estimated == pytest.approx(4.0 * ft.update_weights)
    ft.apply()
    assert _same(_weights(link.gnb.codec.decoder_side_variables), _weights(link.ue.codec.decoder_side_variables))
