"""The CSI dataset format (models.csi_codec.data) on synthetic shards: shards and description written
and read back, splits across shard boundaries, tf.data streaming the same samples, whole tracks,
sha256 checks and description errors. Drawing real channels is tests/simulator/datagen/test_csi.py."""
from __future__ import annotations

import numpy as np
import pytest

from models.csi_codec.data import (array_sha256, csi_dataset, iter_split, load_split, load_track, read_description,
                                   split_ranges, write_description, write_shard)

ARRAY = {"rows": 2, "cols": 2, "spacing_wavelengths": 0.5, "polarization": "V", "pattern": "38.901",
         "ports": 4, "port_order": "UPA row-major"}
FREQS = np.linspace(-1e6, 1e6, 3)


def _write(out, sizes, track: bool = False, seed: int = 0) -> np.ndarray:
    """A dataset of shards with ``sizes`` samples (x [n, 4, 3, 2]); returns all x in order."""
    rng = np.random.default_rng(seed)
    out.mkdir()
    xs, shards, first = [], [], 0
    for k, n in enumerate(sizes):
        arrays = {"x": rng.standard_normal((n, 4, 3, 2)).astype(np.float32), "scale": np.ones(n, np.float32)}
        if track:
            arrays["distance_m"] = np.arange(first, first + n) * 0.5
        shards.append(write_shard(out / f"shard_{k:05d}.npz", arrays))
        xs.append(arrays["x"])
        first += n
    total = sum(sizes)
    write_description(out, {"source": "cdl"}, array=ARRAY, carrier_frequency_hz=3.5e9, frequencies_hz=FREQS,
                      splits=split_ranges(total, (0.4, 0.4, 0.2)), shards=shards,
                      track={"spacing_m": 0.5, "length_m": 0.5 * (total - 1), "waypoints_m": []} if track else None)
    return np.concatenate(xs)


def test_splits_read_back_across_shards(tmp_path):
    x = _write(tmp_path / "d", [4, 4, 2])
    desc = read_description(tmp_path / "d")
    assert desc["shape"] == [4, 3, 2] and desc["splits"] == {"train": [0, 4], "val": [4, 8], "test": [8, 10]}
    assert [s["x_sha256"] for s in desc["shards"]] == [array_sha256(x[a:b]) for a, b in ((0, 4), (4, 8), (8, 10))]
    assert desc["_dir"] == str(tmp_path / "d") and "track" not in desc and "dropped" not in desc
    for name, (a, b) in desc["splits"].items():
        assert np.array_equal(load_split(tmp_path / "d", name), x[a:b]), name
    assert split_ranges(10, (0.25, 0.25, 0.5)) == {"train": (0, 2), "val": (2, 5), "test": (5, 10)}
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        list(iter_split(desc, "dev"))


def test_tf_data_streams_the_same_samples(tmp_path):
    x = _write(tmp_path / "d", [3, 3, 4], seed=1)
    val = load_split(tmp_path / "d", "val")
    assert np.array_equal(val, x[4:8])
    got = np.concatenate([b.numpy() for b in csi_dataset(tmp_path / "d", "val", batch_size=3)])
    assert np.array_equal(got, val)
    shuffled = np.concatenate([b.numpy() for b in csi_dataset(tmp_path / "d", "val", batch_size=3, shuffle_buffer=4)])
    assert sorted(map(bytes, shuffled)) == sorted(map(bytes, val))


def test_whole_track_in_order(tmp_path):
    x = _write(tmp_path / "t", [3, 2], track=True)
    got, dist, spacing = load_track(tmp_path / "t")
    assert np.array_equal(got, x) and dist.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0] and spacing == 0.5
    _write(tmp_path / "a", [2])
    with pytest.raises(ValueError, match="not a track dataset \\(source 'cdl'\\)"):
        load_track(tmp_path / "a")


def test_tampered_shards_and_bad_descriptions_are_refused(tmp_path):
    _write(tmp_path / "d", [2, 2])
    (tmp_path / "d" / "shard_00001.npz").write_bytes(b"x")
    assert load_split(tmp_path / "d", "train").shape == (2, 4, 3, 2)       # shard 0 only
    with pytest.raises(ValueError, match="shard_00001.npz: sha256 does not match the dataset description"):
        load_split(tmp_path / "d", "test")
    with pytest.raises(ValueError, match="no CSI dataset at '.*missing' \\(make one with `airtune data csi`\\)"):
        read_description(tmp_path / "missing")
    (tmp_path / "d" / "description.json").write_text("{")
    with pytest.raises(ValueError, match="cannot read .*description.json"):
        read_description(tmp_path / "d")
