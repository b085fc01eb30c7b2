"""DeepRx training data through the NR chain's transmitter and Sionna's TDL/CDL channels:
bit-to-RE alignment (noiseless samples demap to the stored bits), LS estimate = h on the DMRS,
the chain's reference receivers on the bit grid, per-sample reproducibility (alone, in a batch, in
another shard split), the block channels against the simulator's FadingChannel and Sionna's
power-delay profile, a generated dataset through the format's loader and the model batch, the
format version, config errors, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
import yaml

from models.deeprx.data import FORMAT_VERSION, coded_to_grid, load_dataset, to_batch
from models.deeprx.model import DeepRx, DeepRxConfig, grid_to_coded, hard_ber, loss_mask, raw_ls_estimate
from simulator.channel.fading import FadingChannel
from simulator.datagen import deeprx
from simulator.datagen.deeprx import (CHANNEL_BLOCK, DeepRxDataConfig, block_paths, chain, draw_samples,
                                      generate_dataset, load_data_config, reference_llrs)
from simulator.schema import CarrierConfig, ChannelConfig
from tests.models.deeprx.conftest import TINY_DATA


@pytest.fixture(scope="module")
def noiseless():
    cfg = DeepRxDataConfig(**{**TINY_DATA, "snr_db": (80.0, 80.0)})
    return cfg, draw_samples(cfg, range(4))


def test_noiseless_samples_carry_the_stored_bits_on_the_data_res(noiseless):
    cfg, s = noiseless
    ch = chain(cfg, 12)
    bps = ch.num_bits_per_symbol
    assert bps == 4 and np.all(s["bits_per_symbol"] == 4) and s["bits"].shape == (4, 14, 24, 4)
    data_re = s["data_re"]
    assert data_re.sum() == 13 * 24 and not data_re[2].any()          # one DMRS symbol (index 2), no data on it
    # the stored bits through the chain's own QAM mapper and the true channel are y up to the noise
    # (1e-4 at 80 dB; equalising y / h instead would scale it by the deep fades)
    h = np.broadcast_to(s["h"][:, 0, None, :], (4, 14, 24))[:, data_re]           # [n, data REs]
    sym = ch.mapper(tf.constant(s["bits"][:, data_re, :bps].reshape(4, -1), tf.float32)).numpy()
    assert np.abs(s["y"][:, 0][:, data_re] - h * sym).max() < 1e-3
    assert np.all(s["bits"][:, ~data_re] == 0)
    # raw LS on the DMRS REs is the channel there
    h_ls = raw_ls_estimate(s["y"], np.broadcast_to(s["pilots"], (4, 14, 24))).numpy()[:, 0, 2]   # [n, sc]
    on = s["pilots"][2] != 0
    assert on.sum() == 12 and np.abs(h_ls[:, on] - s["h"][:, 0, on]).max() < 1e-3


def test_reference_receivers_on_the_bit_grid(noiseless):
    """The chain's LS+LMMSE and genie LMMSE LLRs land on the same (RE, bit) grid as the stored bits:
    noiseless they decide every bit right; at low SNR the genie makes fewer errors than LS."""
    cfg, s = noiseless
    mask = loss_mask(np.broadcast_to(s["data_re"], (4, 14, 24)), s["bits_per_symbol"], 4)
    for rx in ("lmmse", "genie_lmmse"):
        llr = reference_llrs(cfg, s, rx)
        assert llr.shape == s["bits"].shape and np.all(llr[:, ~s["data_re"]] == 0)
        assert np.all(hard_ber(llr, s["bits"], mask).numpy() == 0)
    low_cfg = DeepRxDataConfig(**{**TINY_DATA, "snr_db": (3.0, 6.0)})
    low = draw_samples(low_cfg, range(8))
    mask = loss_mask(np.broadcast_to(low["data_re"], (8, 14, 24)), low["bits_per_symbol"], 4)
    ber = {rx: hard_ber(reference_llrs(low_cfg, low, rx), low["bits"], mask).numpy() for rx in ("lmmse", "genie_lmmse")}
    assert 0 < ber["genie_lmmse"].mean() < ber["lmmse"].mean() < 0.5
    with pytest.raises(ValueError, match="receiver must be"):
        reference_llrs(cfg, s, "neural")


def test_coded_order_round_trip_and_the_neural_receiver_on_dataset_samples(noiseless):
    """grid_to_coded inverts coded_to_grid on the chain's data REs, and turns the reference LLR grid
    back into the order the chain's detector produced; DeepRx.receive runs on the dataset's raw arrays."""
    cfg, s = noiseless
    coded = np.random.default_rng(0).standard_normal((4, 13 * 24 * 4)).astype(np.float32)
    grid = coded_to_grid(coded, s["data_re"], 4, 6)
    assert grid.shape == (4, 14, 24, 6) and np.all(grid[..., 4:] == 0)
    assert np.array_equal(grid_to_coded(grid, s["data_re"], 4).numpy(), coded)
    ch = chain(cfg, 12)
    direct = ch.layer_demapper(ch.detector(
        tf.constant(s["y"][:, None]), *ch.estimator(tf.constant(s["y"][:, None]), tf.constant(s["no"])),
        tf.constant(s["no"])))[:, 0].numpy()
    assert np.allclose(grid_to_coded(reference_llrs(cfg, s, "lmmse"), s["data_re"], 4).numpy(), direct)
    model = DeepRx(DeepRxConfig.preset("small"))
    llr = model.receive(s["y"], np.broadcast_to(s["pilots"], (4, 14, 24)), s["no"])
    assert tuple(llr.shape) == (4, 14, 24, 8)
    assert tuple(grid_to_coded(llr, s["data_re"], 4).shape) == (4, ch.num_coded_bits)


PER_SAMPLE = ("index", "y", "h", "no", "snr_db", "mcs", "bits_per_symbol", "channel", "delay_spread_ns", "bits")


def test_samples_are_reproducible_one_by_one_and_draw_the_config_ranges(noiseless):
    """Invariance: a sample drawn alone is the bytes it has inside a batch that spans two channel blocks."""
    cfg, s = noiseless
    again = draw_samples(cfg, [2])
    for k in PER_SAMPLE:
        assert np.array_equal(again[k][0], s[k][2]), k
    assert not np.array_equal(s["h"][0], s["h"][1])
    batch = draw_samples(cfg, [CHANNEL_BLOCK - 1, 3, CHANNEL_BLOCK + 2])
    for j, i in enumerate(batch["index"]):
        alone = draw_samples(cfg, [i]) if i != 3 else {k: v[3:4] for k, v in s.items()}
        for k in PER_SAMPLE:
            assert np.array_equal(alone[k][0], batch[k][j]), (i, k)
    other = draw_samples(DeepRxDataConfig(**{**TINY_DATA, "snr_db": (0.0, 10.0)}), range(6))
    assert np.all((other["snr_db"] >= 0) & (other["snr_db"] <= 10))
    assert np.allclose(other["no"], 10 ** (-other["snr_db"] / 10), rtol=1e-6)
    assert np.all((other["delay_spread_ns"] >= 10) & (other["delay_spread_ns"] <= 300))
    assert set(other["channel"].tolist()) == {0, 1}


@pytest.mark.parametrize("which", ["tdl:B", "cdl:C", "tdl:A30"])
def test_block_channel_is_the_fading_channel_at_the_samples_delay_spread(monkeypatch, which):
    """With one sample per block, sample i's channel is the simulator's FadingChannel drawn with the
    block's seed at sample i's delay spread (the same Sionna call at that spread; the delays scaled from
    the 1 s reference call are Sionna's own float32 product, the gains do not depend on the spread)."""
    monkeypatch.setattr(deeprx, "CHANNEL_BLOCK", 1)
    cfg = DeepRxDataConfig(**{**TINY_DATA, "channels": (which,)})
    model, _, profile = which.partition(":")
    carrier = CarrierConfig(subcarrier_spacing_khz=cfg.subcarrier_spacing_khz, num_prbs=cfg.num_prbs,
                            carrier_frequency_ghz=cfg.carrier_frequency_ghz)
    s = draw_samples(cfg, [0, 7])
    for j, i in enumerate((0, 7)):
        spread = {} if profile == "A30" else {"delay_spread_ns": float(s["delay_spread_ns"][j])}
        fading = FadingChannel(ChannelConfig(model=model, profile=profile, **spread), carrier, 1, 0.0,
                               np.zeros(1, np.int64), deeprx.block_seed(cfg, which, i))
        np.testing.assert_allclose(s["h"][j], fading.cfr_slot(0)[:, 0], rtol=0, atol=2e-6)
    assert not np.allclose(s["h"][0], s["h"][1])


def test_block_channels_have_sionnas_power_delay_profile():
    """TDL-B over two blocks: the mean power of each path is Sionna's normalised PDP (38.901, total 1)
    and each sample's delays are the profile's normalised delays times its own delay spread."""
    from sionna.phy.channel.tr38901 import TDL

    cfg = DeepRxDataConfig(**TINY_DATA)
    pdp = TDL("B", 1.0, cfg.carrier_frequency_ghz * 1e9)
    a, tau = zip(*(block_paths(cfg, "tdl:B", b) for b in (0, 1)))
    power = np.mean([np.abs(x.numpy()[:, 0, 0, 0, 0, :, 0]) ** 2 for x in a], axis=(0, 1))   # [paths]
    assert abs(power.sum() - 1) < 0.05
    strong = pdp.mean_powers.numpy() > 0.05
    np.testing.assert_allclose(power[strong], pdp.mean_powers.numpy()[strong], rtol=0.15)
    spread_s = np.array([deeprx._index_draws(cfg, i)[3] for i in range(2 * CHANNEL_BLOCK)]) * 1e-9
    want = pdp.delays.numpy()[None] * spread_s.astype(np.float32)[:, None]
    assert np.array_equal(np.concatenate([t.numpy()[:, 0, 0] for t in tau]), want)


def test_dataset_shards_loader_and_model_batch(tmp_path):
    cfg = DeepRxDataConfig(**TINY_DATA)
    desc = generate_dataset(cfg, tmp_path / "ds")
    doc = json.loads(desc.read_text())
    assert [s["num_samples"] for s in doc["shards"]] == [3, 2] and doc["grid"]["num_subcarriers"] == 24
    assert doc["format_version"] == FORMAT_VERSION == 2
    data = load_dataset(tmp_path / "ds")
    assert data["index"].tolist() == [0, 1, 2, 3, 4]
    one_shard = load_dataset(generate_dataset(cfg.model_copy(update={"shard_size": 5}), tmp_path / "one").parent)
    for k in PER_SAMPLE:                                # invariance: another shard split, the same bytes
        assert np.array_equal(one_shard[k], data[k]), k
    assert np.array_equal(data["y"][3], draw_samples(cfg, [3])["y"][0])
    model = DeepRx(DeepRxConfig.preset("small"))
    batch = to_batch(data, model.config.max_bits_per_symbol, rows=slice(1, 4))
    assert tuple(batch["x"].shape) == (3, 14, 24, 7) and tuple(batch["mask"].shape) == (3, 14, 24, 8)
    assert float(tf.reduce_sum(batch["mask"])) == 3 * 13 * 24 * 4
    assert np.all(model.per_sample_loss()(model.params, batch).numpy() > 0)
    with pytest.raises(ValueError, match="different config"):
        generate_dataset(DeepRxDataConfig(**{**TINY_DATA, "seed": 5}), tmp_path / "ds")
    (tmp_path / "ds" / "shard_00001.npz").write_bytes(b"x")
    with pytest.raises(ValueError, match="sha256"):
        load_dataset(tmp_path / "ds")
    del doc["format_version"]                           # a dataset written before versions: version 1
    desc.write_text(json.dumps(doc))
    old = ("is a deeprx dataset of format version 1, this airtune reads version 2; regenerate it: delete the "
           "folder, then `airtune data deeprx --config <its data config YAML> --out ")
    for read in (load_dataset, lambda out: generate_dataset(cfg, out)):
        with pytest.raises(ValueError, match=old):
            read(tmp_path / "ds")


@pytest.mark.slow
def test_worker_processes_write_the_same_shards(tmp_path):
    """Invariance: shards drawn in 2 spawned processes are the bytes one process writes."""
    cfg = DeepRxDataConfig(**TINY_DATA)
    one = json.loads(generate_dataset(cfg, tmp_path / "one").read_text())
    two = json.loads(generate_dataset(cfg, tmp_path / "two", workers=2).read_text())
    assert one == two and [s["num_samples"] for s in two["shards"]] == [3, 2]
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        generate_dataset(cfg, tmp_path / "three", workers=0)


def test_config_errors_name_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("num_prbs: 0\nchannels: ['tdl:Z']\nsnr_db: [10, 0]\nfoo: 1\n")
    with pytest.raises(ValueError) as err:
        load_data_config(bad)
    msg = str(err.value)
    assert "invalid data config" in msg and "num_prbs: Input should be greater than or equal to 1 (got 0) (line 1)" in msg
    assert "channels: unknown channel 'tdl:Z'" in msg and "foo: unknown key (line 4)" in msg
    with pytest.raises(ValueError, match="snr_db: lower bound 10.0 > upper bound 0.0"):
        DeepRxDataConfig(snr_db=(10, 0))


def test_cli_writes_a_dataset_and_rejects_a_bad_config(tmp_path, capsys):
    from simulator.cli import main

    cfg = tmp_path / "d.yaml"
    cfg.write_text(yaml.safe_dump({**TINY_DATA, "kind": "deeprx_data", "mcs": [12], "channels": ["tdl:B"],
                                   "num_samples": 2}))
    assert main(["data", "deeprx", "--config", str(cfg), "--out", str(tmp_path / "d")]) == 0
    assert "2 DeepRx slots [14 symbols, 24 subcarriers]" in capsys.readouterr().out
    assert load_dataset(tmp_path / "d")["y"].shape == (2, 1, 14, 24)
    cfg.write_text("num_prbs: -1\n")
    assert main(["data", "deeprx", "--config", str(cfg), "--out", str(tmp_path / "e")]) == 2
    assert "num_prbs: Input should be greater than or equal to 1" in capsys.readouterr().err
