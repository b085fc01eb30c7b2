"""The DeepRx dataset format: a folder of npz shards with ``description.json``, written and read
here, and the model batch of its samples. The generator, which draws the samples from the
simulator's NR chain and Sionna's TDL/CDL channels, is ``simulator/datagen/deeprx.py`` (``airtune data deeprx``).

Layout: ``description.json`` (``format_version``; ``config``: the data config the samples were
drawn with, its ``kind`` ``deeprx_data``; ``grid``; ``signal_model``; ``shards`` with sha256) and
``shard_00000.npz`` ... with, per sample: ``index`` [n] int64 (the sample index the generator
draws it from), ``y`` [n, ant, 14, sc] complex64, ``h`` [n, ant, sc] complex64 (true channel,
for the genie receiver), ``no`` [n] float32, ``snr_db`` [n] float32, ``mcs`` [n] int16,
``bits_per_symbol`` [n] int16, ``channel`` [n] int16 (index into config.channels),
``delay_spread_ns`` [n] float32, ``bits`` [n, 14, sc, B] uint8 (coded, scrambled bits of each
data RE, B = the largest modulation order of the config; zeros beyond a sample's order and on
non-data REs); and once per shard ``pilots`` [14, sc] complex64 (DMRS grid, zero elsewhere) and
``data_re`` [14, sc] bool. Signal model: ``y = h x + sqrt(no) w``, h held over the slot,
no = 10^(-snr_db / 10) per RE, signal power 1.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.npz_file import file_sha256, save_npz

DESCRIPTION = "description.json"
# 1 (description without "format_version"): one Sionna channel call per sample; 2: channels drawn in
# blocks of samples (simulator/datagen/deeprx.py). Same layout, other samples for the same config and
# index, so a reader refuses another version (influence and training name samples by index).
FORMAT_VERSION = 2
DATA_KIND = "deeprx_data"            # the data config's ``kind``
PER_SHARD = ("pilots", "data_re")    # arrays stored once per shard, not per sample


def coded_to_grid(coded: np.ndarray, data_re: np.ndarray, bits_per_symbol: int, width: int) -> np.ndarray:
    """coded [m, num_data_re * bits_per_symbol] (the chain's coded-bit order) -> [m, 14, sc, width],
    zero off the data REs and beyond ``bits_per_symbol``; the inverse of ``model.grid_to_coded``
    (the ResourceGridMapper fills the data REs in (symbol, subcarrier) row-major order)."""
    grid = np.zeros((coded.shape[0], *data_re.shape, width), coded.dtype)
    grid[:, data_re, :bits_per_symbol] = coded.reshape(coded.shape[0], -1, bits_per_symbol)
    return grid


def write_shard(path: Path, arrays: dict[str, np.ndarray]) -> dict:
    """Write one shard (atomically); its description entry {"file", "num_samples", "sha256"}."""
    return {"file": path.name, "num_samples": int(arrays["index"].size), "sha256": save_npz(path, arrays)}


def sample_grid(arrays: dict[str, np.ndarray]) -> dict:
    """The grid of dataset arrays, as the description records it: {"num_ofdm_symbols",
    "num_subcarriers", "num_rx_ant", "bits_width"} (from the shapes of ``y`` and ``bits``)."""
    _, num_rx_ant, num_ofdm_symbols, num_subcarriers = arrays["y"].shape
    return {"num_ofdm_symbols": int(num_ofdm_symbols), "num_subcarriers": int(num_subcarriers),
            "num_rx_ant": int(num_rx_ant), "bits_width": int(arrays["bits"].shape[-1])}


def write_description(out: Path, config: dict, shards: list[dict], grid: dict) -> Path:
    """Write ``out``/description.json of the shards drawn with ``config`` (the data config as JSON)
    on ``grid`` (``sample_grid`` of their arrays); returns its path."""
    desc = {"kind": "airtune deeprx dataset", "format_version": FORMAT_VERSION, "config": config, "grid": grid,
            "signal_model": "y = h x + sqrt(no) w, h held over the slot, no = 10^(-snr_db/10), signal power 1",
            "shards": shards}
    path = out / DESCRIPTION
    path.write_text(json.dumps(desc, indent=2))
    return path


def read_description(path: str | Path) -> dict:
    """description.json of the deeprx dataset folder ``path`` ({"config", "grid", "shards", ...});
    a ValueError naming the folder if it holds none, or one of another ``FORMAT_VERSION``."""
    desc_path = Path(path) / DESCRIPTION
    if not desc_path.is_file():
        raise ValueError(f"no deeprx dataset at {str(path)!r} (make one with `airtune data deeprx`)")
    try:
        desc = json.loads(desc_path.read_text())
        kind = desc["config"]["kind"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read {desc_path}: {exc}") from None
    if kind != DATA_KIND or not isinstance(desc.get("shards"), list):
        raise ValueError(f"{str(path)!r} is not a deeprx dataset (config kind {kind!r})")
    version = desc.get("format_version", 1)
    if version != FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} is a deeprx dataset of format version {version}, this airtune reads "
                         f"version {FORMAT_VERSION}; regenerate it: delete the folder, then `airtune data deeprx "
                         f"--config <its data config YAML> --out {path}`")
    return desc


def dataset_size(desc: dict) -> int:
    """Samples in a described dataset (all its shards)."""
    return sum(int(s["num_samples"]) for s in desc["shards"])


def load_dataset(path: str | Path, size: int | None = None) -> dict[str, np.ndarray]:
    """The first ``size`` samples (default: all) of a dataset folder, reading only the shards they
    are in (sha256 checked); ``pilots``/``data_re`` once."""
    path = Path(path)
    desc = read_description(path)
    parts, have = [], 0
    for s in desc["shards"]:
        if size is not None and have >= size:
            break
        f = path / s["file"]
        if file_sha256(f) != s["sha256"]:
            raise ValueError(f"{f}: sha256 does not match {DESCRIPTION}")
        with np.load(f, allow_pickle=False) as z:
            parts.append({k: z[k] for k in z.files})
        have += int(s["num_samples"])
    if size is not None and have < size:
        raise ValueError(f"{path} has {have} samples, {size} asked for")
    n = have if size is None else size
    out = {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0] if k not in PER_SHARD}
    out["pilots"], out["data_re"] = parts[0]["pilots"], parts[0]["data_re"]
    return out


def subset(arrays: dict[str, np.ndarray], rows) -> dict[str, np.ndarray]:
    """The samples ``rows`` (an index array or slice) of dataset arrays; the per-shard arrays as they are."""
    return {k: (v if k in PER_SHARD else v[rows]) for k, v in arrays.items()}


def to_batch(arrays: dict[str, np.ndarray], max_bits_per_symbol: int = 8, dtype: str = "float32",
             rows=slice(None)) -> dict:
    """Dataset arrays -> a model batch {"x" [n, 14, sc, 4 ant + 3], "bits", "mask" [n, 14, sc, max_bits]}."""
    # lazy: the model module imports TensorFlow; validating a scenario reads descriptions without it
    import tensorflow as tf

    from models.deeprx.model import loss_mask, make_features

    y = arrays["y"][rows]
    n = y.shape[0]
    pilots = np.broadcast_to(arrays["pilots"], (n, *arrays["pilots"].shape))
    bits = arrays["bits"][rows]
    if bits.shape[-1] > max_bits_per_symbol:
        raise ValueError(f"dataset has {bits.shape[-1]} bits per RE, the model {max_bits_per_symbol}")
    bits = np.pad(bits, [(0, 0)] * 3 + [(0, max_bits_per_symbol - bits.shape[-1])])
    data_re = np.broadcast_to(arrays["data_re"], (n, *arrays["data_re"].shape))
    return {"x": make_features(y, pilots, arrays["no"][rows], dtype),
            "bits": tf.constant(bits, dtype),
            "mask": loss_mask(data_re, arrays["bits_per_symbol"][rows], max_bits_per_symbol, dtype)}
