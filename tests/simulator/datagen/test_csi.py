"""CSI datasets drawn from Sionna 38.901 CDL/UMi: layout and normalisation through the format's readers,
shards redrawn from the config, seeds, delay spread, UMi positions, config errors, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models.csi_codec.data import array_sha256, load_split, read_description
from simulator.datagen.csi import CsiDataConfig, generate_dataset, load_data_config, redraw_shard

SMALL = dict(bs_array_rows=2, bs_array_cols=4, num_subcarriers=16)


def _adjacent_subcarrier_correlation(x: np.ndarray) -> float:
    """|E[h_{s+1} h_s^*]| / E[|h_s|^2], averaged over samples, antennas and subcarriers: the
    frequency correlation at one subcarrier spacing, |sum_l P_l exp(-j 2 pi df tau_l)|."""
    h = x[..., 0] + 1j * x[..., 1]                                  # [n, ant, sc]
    return float(np.abs(np.mean(h[:, :, 1:] * np.conj(h[:, :, :-1]))) / np.mean(np.abs(h) ** 2))


@pytest.fixture(scope="module")
def cdl_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cdl")
    cfg = CsiDataConfig(source="cdl", num_samples=25, shard_size=10, seed=3, **SMALL)
    generate_dataset(cfg, out)
    return out, cfg


def test_cdl_dataset_layout_and_normalisation(cdl_dir):
    out, cfg = cdl_dir
    desc = read_description(out)
    assert [s["num_samples"] for s in desc["shards"]] == [10, 10, 5]
    assert desc["shape"] == [8, 16, 2] and len(desc["frequencies_hz"]) == 16
    assert desc["splits"] == {"train": [0, 10], "val": [10, 20], "test": [20, 25]}
    parts = {s: load_split(out, s) for s in ("train", "val", "test")}
    assert [len(p) for p in parts.values()] == [10, 10, 5]
    x = np.concatenate(list(parts.values()))
    assert x.dtype == np.float32 and x.shape == (25, 8, 16, 2)
    np.testing.assert_allclose(np.mean(np.sum(x ** 2, axis=-1), axis=(1, 2)), 1.0, rtol=1e-5)
    assert len({x[i].tobytes() for i in range(25)}) == 25                # independent draws
    with np.load(out / "shard_00000.npz") as d:
        assert d["scale"].shape == (10,) and np.all(d["scale"] > 0)
    with np.load(out / "shard_00002.npz") as d:                         # redrawn from the config alone
        again = redraw_shard(cfg, 2)
        assert np.array_equal(again["x"], d["x"]) and array_sha256(again["x"]) == desc["shards"][2]["x_sha256"]


def test_same_seed_same_data_other_seed_other_data(cdl_dir, tmp_path):
    out, cfg = cdl_dir
    generate_dataset(cfg.model_copy(update={"num_samples": 10}), tmp_path / "again")
    assert np.array_equal(load_split(tmp_path / "again", "train")[:4], load_split(out, "train")[:4])
    generate_dataset(cfg.model_copy(update={"num_samples": 10, "seed": 4}), tmp_path / "other")
    assert not np.array_equal(load_split(tmp_path / "other", "train")[:4], load_split(out, "train")[:4])


def test_tampered_shard_and_config_clash_are_refused(cdl_dir, tmp_path):
    out, cfg = cdl_dir
    small = cfg.model_copy(update={"num_samples": 4, "shard_size": 4})
    generate_dataset(small, tmp_path / "t")
    with pytest.raises(ValueError, match="different config"):
        generate_dataset(small.model_copy(update={"seed": 9}), tmp_path / "t")
    shard = tmp_path / "t" / "shard_00000.npz"
    data = bytearray(shard.read_bytes())
    data[-20] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_split(tmp_path / "t", "train")


def test_larger_delay_spread_decorrelates_subcarriers(tmp_path):
    corr = {}
    for ds in (10.0, 1000.0):
        cfg = CsiDataConfig(source="cdl", cdl_profile="A", delay_spread_ns=ds, num_samples=40, shard_size=40,
                            split_fractions=(1.0, 0.0, 0.0), **SMALL)
        generate_dataset(cfg, tmp_path / f"ds{ds:g}")
        corr[ds] = _adjacent_subcarrier_correlation(load_split(tmp_path / f"ds{ds:g}", "train"))
    # ns reach Sionna as seconds: 10 ns keeps adjacent subcarriers (3.1 MHz apart) coherent, 1 us does not
    assert corr[10.0] > 0.98 and corr[1000.0] < 0.8, corr


def test_umi_dataset_has_positions(tmp_path):
    cfg = CsiDataConfig(source="umi", num_samples=6, shard_size=6, split_fractions=(0.5, 0.5, 0.0), **SMALL)
    generate_dataset(cfg, tmp_path / "umi")
    with np.load(tmp_path / "umi" / "shard_00000.npz") as d:
        assert d["x"].shape == (6, 8, 16, 2) and d["position_m"].shape == (6, 3)
        dist = np.linalg.norm(d["position_m"][:, :2], axis=1)
        assert np.all(dist > 5) and np.all(dist < 500)                  # a UMi sector
        assert np.all(d["scale"] > 0)
    assert len(load_split(tmp_path / "umi", "test")) == 0


def test_config_errors_name_the_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("source: cdl\nnum_samples: 0\nshard_sizes: 3\n")
    with pytest.raises(ValueError) as err:
        load_data_config(p)
    assert "num_samples:" in str(err.value) and "shard_sizes:" in str(err.value)
    p.write_text("source: cdl\nsplit_fractions: [0.5, 0.5, 0.5]\n")
    with pytest.raises(ValueError, match="sum to 1"):
        load_data_config(p)
    json.loads(CsiDataConfig(source="umi").model_dump_json())          # the config serialises


def test_cli_data_csi(tmp_path, capsys):
    from simulator.cli import main

    cfg = tmp_path / "csi.yaml"
    cfg.write_text("source: cdl\nbs_array_rows: 2\nbs_array_cols: 2\nnum_subcarriers: 8\nnum_samples: 5\n")
    assert main(["data", "csi", "--config", str(cfg), "--out", str(tmp_path / "d")]) == 0
    assert "5 CSI samples [4 antennas, 8 subcarriers]" in capsys.readouterr().out
    assert load_split(tmp_path / "d", "train").shape == (2, 4, 8, 2)
    cfg.write_text("source: cdl\nnum_samples: -1\n")
    assert main(["data", "csi", "--config", str(cfg), "--out", str(tmp_path / "e")]) == 2
    assert "num_samples:" in capsys.readouterr().err
