"""UE and gNB share only bytes: reports decode at the gNB, and after a full-model fine-tuning the
gNB's decoder, rebuilt from the update bytes alone, equals the UE's quantised decoder bit for bit."""
from __future__ import annotations

import numpy as np
import pytest

from models.csi_codec.model import ConvCsiCodec, ConvCsiConfig
from models.csi_codec.sides import CsiDecoderSide, CsiEncoderSide
from models.csi_codec.train import FullModelFineTuner
from models.csi_codec.update_coder import SpikeSlabPrior, UpdateCoder, UpdateQuantizer
from tests.models.csi_codec.conftest import few_path_csi


def _bits_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.dtype == y.dtype == np.float32 and np.array_equal(x.view(np.uint32),
                                                                                         y.view(np.uint32))
                                    for x, y in zip(a, b))


@pytest.fixture
def pair(tmp_path):
    """A UE and a gNB built from the same checkpoint file (the gNB never sees the UE's objects)."""
    path = ConvCsiCodec(ConvCsiConfig.preset("32x32", filters=8), seed=3).save(tmp_path / "csi.json")
    coder = UpdateCoder(UpdateQuantizer(64, 0.005), SpikeSlabPrior())
    ue = CsiEncoderSide(ConvCsiCodec.load(path), coder)
    gnb = CsiDecoderSide(ConvCsiCodec.load(path), UpdateCoder(UpdateQuantizer(64, 0.005), SpikeSlabPrior()))
    return ue, gnb


def test_reports_decode_at_the_gnb(pair):
    ue, gnb = pair
    x = few_path_csi(np.random.default_rng(0), 6)
    coded, est = ue.report(x)
    x_gnb = gnb.decode_reports(coded.data, 6)
    x_ue = ue.codec.decompress(ue.codec.compress(x)[0])
    assert np.array_equal(x_gnb, x_ue)
    streams, _ = ue.report(x, per_report=True)
    assert np.array_equal(np.concatenate([gnb.decode_reports(s.data, 1) for s in streams]), x_ue)
    assert coded.bits <= 1.01 * est.sum() + 64


def test_gnb_decoder_rebuilt_from_update_bytes_equals_the_ue_quantised_decoder(pair):
    ue, gnb = pair
    rng = np.random.default_rng(1)
    x_new = few_path_csi(rng, 64, paths=1)                    # a shifted environment: single path
    before = [w.copy() for w in gnb.decoder_side_weights()]
    tuner = FullModelFineTuner(ue.codec, ue.update_coder.quantizer, ue.update_coder.prior, lmbda=20.0, beta=1.0,
                               reports_per_update=100, learning_rate=3e-3)
    tuner.run(x_new, ue.gnb_decoder_side, steps=15, batch=16, rng=rng)
    update = ue.make_update()
    assert update.nonzero > 0 and update.bits <= 1.01 * update.estimated_bits + 64
    assert not _bits_equal(before, update.quantized)

    gnb.apply_update(update.data)                              # bytes only
    ue_side = [v.numpy() for v in ue.codec.decoder_side_variables]
    assert _bits_equal(gnb.decoder_side_weights(), ue_side)
    assert _bits_equal(gnb.decoder_side_weights(), update.quantized)
    # the same tables on both ends, so the next reports decode to what the UE reconstructs
    assert all(np.array_equal(a, b) for a, b in zip(gnb.coder.tables.counts, ue.coder.tables.counts))
    coded, _ = ue.report(x_new[:5])
    assert np.array_equal(gnb.decode_reports(coded), ue.codec.decompress(ue.codec.compress(x_new[:5])[0]))

    # a second update is coded against the rebuilt decoder, not the checkpoint
    tuner.run(x_new, ue.gnb_decoder_side, steps=5, batch=16, rng=rng)
    gnb.apply_update(ue.make_update().data)
    assert _bits_equal(gnb.decoder_side_weights(), [v.numpy() for v in ue.codec.decoder_side_variables])


def test_a_gnb_without_the_update_keeps_the_old_decoder(pair):
    ue, gnb = pair
    before = gnb.decoder_side_weights()
    for v in ue.codec.decoder_side_variables:
        v.assign_add(0.02 * np.ones(v.shape, np.float32))
    ue.make_update()                                          # made but never delivered
    assert _bits_equal(gnb.decoder_side_weights(), before)
    assert not _bits_equal(gnb.decoder_side_weights(), [v.numpy() for v in ue.codec.decoder_side_variables])
