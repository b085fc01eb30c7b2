"""The committed 32x32 codec (trained on Sionna CDL-C by the command in its checkpoint) on its own
test split: NMSE below -10 dB, and real bitstreams within 1 % + 64 bits per stream of the
model's estimate. The test samples are redrawn from the recorded dataset config (same seeds),
and their hash must match the one recorded when the checkpoint was evaluated."""
from __future__ import annotations

import numpy as np
import pytest

from models.checkpoint import read_checkpoint_config
from models.csi_codec.bitstream import LatentCoder
from models.csi_codec.data import array_sha256
from models.csi_codec.model import ConvCsiCodec, nmse_db
from simulator.datagen.csi import CsiDataConfig, redraw_shard
from tests.conftest import REPO

CHECKPOINT = REPO / "models" / "checkpoints" / "csi_conv_cdl_c_32x32.json"


@pytest.fixture(scope="module")
def trained():
    training = read_checkpoint_config(CHECKPOINT, "conv_csi").training
    last = training["test_shards"][-1]                       # one test shard (500 samples) keeps it fast
    x = redraw_shard(CsiDataConfig(**training["dataset_config"]), last["index"])["x"][last["first"]:]
    return ConvCsiCodec.load(CHECKPOINT), x, last, training


def test_test_split_is_redrawn_exactly(trained):
    _, x, last, _ = trained
    assert last["first"] == 0 and array_sha256(np.ascontiguousarray(x)) == last["x_sha256"]


def test_nmse_on_its_test_split_is_below_minus_10_db(trained):
    codec, x, _, training = trained
    symbols, _ = codec.compress(x)
    nmse = float(nmse_db(x, codec.decompress(symbols)))
    assert nmse < -10.0
    assert nmse == pytest.approx(training["test"]["nmse_db"], abs=1.0)   # the recorded whole-split value


def test_coded_bits_follow_the_estimate_on_real_latents(trained):
    codec, x, _, _ = trained
    symbols, est = codec.compress(x)
    coder = LatentCoder(codec.probability_tables(), codec.config.latent_shape)
    one = coder.encode(symbols)
    assert np.array_equal(coder.decode(one), symbols)
    assert est.sum() - 64 <= one.bits <= 1.01 * est.sum() + 64
    for s, e in zip(coder.encode_each(symbols[:50]), est[:50]):
        assert s.bits <= 1.01 * e + 64
