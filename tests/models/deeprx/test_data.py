"""The DeepRx dataset format (models.deeprx.data): shards and description written and read back,
the loader reading only the shards it needs and checking their sha256, description errors, the
coded-bit order round trip and the model batch. Samples here are synthetic; drawing real ones is
tests/simulator/datagen/test_deeprx.py."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models.deeprx.data import (coded_to_grid, dataset_size, load_dataset, read_description, sample_grid, subset,
                                to_batch, write_description, write_shard)
from models.deeprx.model import grid_to_coded

NUM_SC = 6
CONFIG = {"kind": "deeprx_data"}            # the part of a data config the format itself reads


def _samples(first: int, n: int, rng: np.random.Generator) -> dict:
    """n synthetic samples in the dataset layout (QPSK, one DMRS symbol at index 2)."""
    data_re = np.ones((14, NUM_SC), bool)
    data_re[2] = False
    pilots = np.where(data_re, 0, 1 + 1j).astype(np.complex64)
    y = rng.standard_normal((n, 1, 14, NUM_SC)) + 1j * rng.standard_normal((n, 1, 14, NUM_SC))
    return {"index": np.arange(first, first + n), "y": y.astype(np.complex64), "no": np.full(n, 0.1, np.float32),
            "bits_per_symbol": np.full(n, 2, np.int16),
            "bits": (rng.integers(0, 2, (n, 14, NUM_SC, 2)) * data_re[..., None]).astype(np.uint8),
            "pilots": pilots, "data_re": data_re}


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    out = tmp_path / "ds"
    out.mkdir()
    parts = [_samples(3 * k, n, rng) for k, n in enumerate((3, 3, 2))]
    shards = [write_shard(out / f"shard_{k:05d}.npz", p) for k, p in enumerate(parts)]
    write_description(out, CONFIG, shards, sample_grid(parts[0]))
    return out


def test_written_shards_read_back(dataset):
    desc = read_description(dataset)
    assert [s["num_samples"] for s in desc["shards"]] == [3, 3, 2] and dataset_size(desc) == 8
    assert desc["grid"] == {"num_ofdm_symbols": 14, "num_subcarriers": NUM_SC, "num_rx_ant": 1, "bits_width": 2}
    data = load_dataset(dataset)
    assert data["index"].tolist() == list(range(8)) and data["y"].shape == (8, 1, 14, NUM_SC)
    assert data["pilots"].shape == data["data_re"].shape == (14, NUM_SC)
    part = subset(data, [1, 6])
    assert part["index"].tolist() == [1, 6] and part["pilots"] is data["pilots"]


def test_loader_reads_only_the_shards_it_needs_and_checks_them(dataset):
    with pytest.raises(ValueError, match="has 8 samples, 9 asked for"):
        load_dataset(dataset, 9)
    (dataset / "shard_00002.npz").write_bytes(b"corrupt")
    assert load_dataset(dataset, 5)["index"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="shard_00002.npz: sha256 does not match description.json"):
        load_dataset(dataset)


def test_description_errors_name_the_folder(tmp_path, dataset):
    with pytest.raises(ValueError, match="no deeprx dataset at '.*missing' \\(make one with `airtune data deeprx`\\)"):
        read_description(tmp_path / "missing")
    desc = json.loads((dataset / "description.json").read_text())
    (dataset / "description.json").write_text(json.dumps({**desc, "config": {"source": "cdl"}}))
    with pytest.raises(ValueError, match="cannot read .*description.json: 'kind'"):
        read_description(dataset)
    (dataset / "description.json").write_text(json.dumps({**desc, "config": {"kind": "other"}}))
    with pytest.raises(ValueError, match="is not a deeprx dataset \\(config kind 'other'\\)"):
        read_description(dataset)


def test_coded_order_round_trip():
    """coded_to_grid puts the chain's coded bits on the data REs in (symbol, subcarrier) order and
    model.grid_to_coded takes them back."""
    data_re = _samples(0, 1, np.random.default_rng(0))["data_re"]
    coded = np.random.default_rng(1).standard_normal((3, 13 * NUM_SC * 2)).astype(np.float32)
    grid = coded_to_grid(coded, data_re, 2, 4)
    assert grid.shape == (3, 14, NUM_SC, 4) and np.all(grid[..., 2:] == 0) and np.all(grid[:, 2] == 0)
    np.testing.assert_array_equal(grid[0, 0, 1, :2], coded[0, 2:4])
    np.testing.assert_array_equal(grid_to_coded(grid, data_re, 2).numpy(), coded)


def test_model_batch(dataset):
    batch = to_batch(load_dataset(dataset), max_bits_per_symbol=4, rows=slice(1, 4))
    assert tuple(batch["x"].shape) == (3, 14, NUM_SC, 7) and tuple(batch["mask"].shape) == (3, 14, NUM_SC, 4)
    assert float(np.sum(batch["mask"])) == 3 * 13 * NUM_SC * 2
    with pytest.raises(ValueError, match="dataset has 2 bits per RE, the model 1"):
        to_batch(load_dataset(dataset), max_bits_per_symbol=1)
