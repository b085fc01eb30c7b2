"""The CSI dataset format: a folder of npz shards with ``description.json``, written and read here
(``read_description``, splits in memory or through ``tf.data``, whole tracks). The generator,
which draws the channels from Sionna's 38.901 models, Sionna RT and a scenario's fading channel, is
``simulator/datagen/csi.py`` (``airtune data csi``).

A sample is a downlink channel H [num_ant, num_subcarriers] complex from a BS array to one
UE antenna, stored as x [num_ant, num_subcarriers, 2] float32 (real, imag). Each sample
is divided by its RMS entry, x = H / sqrt(mean |H|^2), so the codec sees unit mean power (NMSE,
eq. 11, is unchanged by a per-sample scale); the divisor is stored as ``scale`` so H can be
recovered.

Layout: ``description.json`` (``config``: the data config the samples were drawn with; shape,
array, frequencies, normalisation, splits, shards with sha256 of the file and of ``x``) and
``shard_00000.npz`` ... (``x`` [n, num_ant, num_sc, 2], ``scale`` [n], and ``position_m`` [n, 3]
for UMi, tracks and ray tracing, ``distance_m`` [n] for tracks and scenario sources). Splits are
contiguous sample ranges in shard order. A dataset drawn from a scenario's channel also holds the
resolved scenario (``scenario``). Tracks also put ``track: {spacing_m, length_m, waypoints_m}`` into the
description; their samples are in driving order in the shards, splits cut the track into
contiguous pieces, and ``load_track`` returns the whole track in order.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterator

import numpy as np

from models.npz_file import file_sha256, save_npz

DESCRIPTION = "description.json"
SPLITS = ("train", "val", "test")


def split_ranges(num_samples: int, fractions) -> dict[str, tuple[int, int]]:
    """Contiguous [start, stop) sample ranges per split."""
    edges = np.round(np.cumsum([0.0, *fractions]) * num_samples).astype(int)
    edges[-1] = num_samples
    return {name: (int(edges[i]), int(edges[i + 1])) for i, name in enumerate(SPLITS)}


def array_sha256(x: np.ndarray) -> str:
    """sha256 of an array's bytes (C order), to check that redrawn samples are the same."""
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def write_shard(path: Path, arrays: dict[str, np.ndarray], **meta) -> dict:
    """Write one shard (atomically); its description entry {"file", "num_samples", "sha256",
    "x_sha256", **meta}."""
    return {"file": path.name, "num_samples": int(len(arrays["x"])), "sha256": save_npz(path, arrays),
            "x_sha256": array_sha256(arrays["x"]), **meta}


def write_description(out: Path, config: dict, *, array: dict, carrier_frequency_hz: float, frequencies_hz,
                      splits: dict, shards: list[dict], track: dict | None = None, dropped: dict | None = None,
                      scenario: dict | None = None) -> Path:
    """Write ``out``/description.json of the shards drawn with ``config`` (the data config as JSON)
    from the BS ``array`` {"rows", "cols", "ports", "port_order", ...} on ``frequencies_hz``
    [num_subcarriers] (baseband); ``track``, ``dropped`` and ``scenario`` for the sources that have
    them. Returns its path."""
    desc = {
        "kind": "airtune csi dataset",
        "config": config,
        "shape": [array["ports"], len(frequencies_hz), 2],
        "layout": "x [n, num_ant, num_subcarriers, 2] float32 (real, imag); antenna index in array.port_order",
        "array": array,
        "carrier_frequency_hz": carrier_frequency_hz,
        "frequencies_hz": [float(f) for f in frequencies_hz],
        "normalisation": "per sample: x = H / sqrt(mean |H|^2); the divisor is stored as `scale`",
        "splits": splits,
        "shards": shards,
    }
    if track is not None:
        desc["track"] = track
    if dropped is not None:
        desc["dropped"] = dropped
    if scenario is not None:
        desc["scenario"] = scenario
    path = out / DESCRIPTION
    path.write_text(json.dumps(desc, indent=2))
    return path


def read_description(path: str | Path) -> dict:
    """description.json of a CSI dataset (``path``: its folder or the file itself), with ``_dir``
    (the folder) added; a ValueError naming the path if there is none or it cannot be read."""
    path = Path(path)
    if path.is_dir():
        path = path / DESCRIPTION
    if not path.is_file():
        raise ValueError(f"no CSI dataset at {str(path.parent if path.name == DESCRIPTION else path)!r} "
                         f"(make one with `airtune data csi`)")
    try:
        desc = json.loads(path.read_text())
        desc["_dir"] = str(path.parent)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    return desc


def _read_shard(desc: dict, shard: dict, keys: tuple[str, ...], verify: bool = True) -> dict[str, np.ndarray]:
    """Arrays ``keys`` of one shard of a described dataset, its sha256 checked if ``verify``."""
    path = Path(desc["_dir"]) / shard["file"]
    if verify and file_sha256(path) != shard["sha256"]:
        raise ValueError(f"{path}: sha256 does not match the dataset description")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in keys}


def iter_split(desc: dict, split: str, verify: bool = True) -> Iterator[np.ndarray]:
    """Samples x [num_ant, num_sc, 2] of one split, in order, shard by shard."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    start, stop = desc["splits"][split]
    offset = 0
    for shard in desc["shards"]:
        lo, hi = max(start - offset, 0), min(stop - offset, shard["num_samples"])
        if lo < hi:
            yield from _read_shard(desc, shard, ("x",), verify)["x"][lo:hi]
        offset += shard["num_samples"]


def load_split(path: str | Path, split: str) -> np.ndarray:
    """A whole split in memory, [n, num_ant, num_sc, 2] float32."""
    desc = read_description(path)
    xs = list(iter_split(desc, split))
    return np.stack(xs) if xs else np.zeros((0, *desc["shape"]), np.float32)


def csi_dataset(path: str | Path, split: str, batch_size: int | None = None,
                shuffle_buffer: int = 0, seed: int = 0):
    """A ``tf.data.Dataset`` of x [num_ant, num_sc, 2] float32 (batched if ``batch_size``),
    streaming the split's shards; ``shuffle_buffer`` > 0 shuffles with ``seed``."""
    import tensorflow as tf

    desc = read_description(path)
    ds = tf.data.Dataset.from_generator(lambda: iter_split(desc, split),
                                        output_signature=tf.TensorSpec(desc["shape"], tf.float32))
    if shuffle_buffer > 0:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if batch_size:
        ds = ds.batch(batch_size)
    return ds.prefetch(1)


def load_track(path: str | Path) -> tuple[np.ndarray, np.ndarray, float]:
    """A track dataset (cdl_track, ray-traced track) whole and in driving order, regardless of splits:
    x [n, num_ant, num_sc, 2] float32, distance_m [n] float64, spacing_m."""
    desc = read_description(path)
    if "track" not in desc:
        raise ValueError(f"{desc['_dir']}: not a track dataset (source {desc['config'].get('source')!r})")
    shards = [_read_shard(desc, shard, ("x", "distance_m")) for shard in desc["shards"]]
    return (np.concatenate([s["x"] for s in shards]), np.concatenate([s["distance_m"] for s in shards]).astype(np.float64),
            float(desc["track"]["spacing_m"]))
