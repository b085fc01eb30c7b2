"""The committed 32x32 codecs (trained by the commands in their checkpoints: on Sionna CDL-C over
50 MHz, and on the channel of scenarios/mimo_link.yaml) on their own test splits: NMSE below -10 dB, and real bitstreams within 1 % + 64 bits per stream of the
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

CHECKPOINTS = ["csi_conv_cdl_c_32x32.json", "csi_conv_mimo_link_32x32.json"]


@pytest.fixture(scope="module", params=CHECKPOINTS)
def trained(request):
    checkpoint = REPO / "models" / "checkpoints" / request.param
    training = read_checkpoint_config(checkpoint, "conv_csi").training
    last = training["test_shards"][-1]                       # one test shard (500 samples) keeps it fast
    x = redraw_shard(CsiDataConfig(**training["dataset_config"]), last["index"])["x"][last["first"]:]
    return ConvCsiCodec.load(checkpoint), x, last, training


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
