"""Spatial-frequency CSI datasets from Sionna's 38.901 CDL and UMi models, written as shards
with a JSON description and read back through ``tf.data``.

A sample is the downlink channel from a BS uniform planar array (rows x cols, vertical
polarisation, 38.901 element pattern) to a single-antenna UE (omni) on ``num_subcarriers``
frequencies spread evenly over ``bandwidth_mhz`` around the carrier:
H [num_ant, num_subcarriers] complex, num_ant = rows * cols (antenna index = row-major
element order of Sionna's PanelArray), stored as x [n, num_ant, num_subcarriers, 2] float32
(real, imag), one snapshot per sample.

- ``cdl``: 38.901 CDL-A..E with the given delay spread; every sample is an independent draw
  (the clusters of a CDL profile are fixed; the rays' phases and couplings are random), so a
  profile is one stationary environment and another profile a controlled shift.
- ``umi``: 38.901 UMi with path loss and shadow fading, one outdoor UE dropped per sample in a
  single sector (Sionna's ``gen_single_sector_topology``); positions relative to the BS are
  stored.

Normalisation: each sample is divided by its RMS entry, x = H / sqrt(mean |H|^2), so the codec
sees unit mean power (NMSE, eq. 11, is unchanged by a per-sample scale); the divisor is stored
as ``scale`` so H can be recovered. Randomness: shard i is drawn with Sionna's seed set to the
i-th child of ``SeedSequence(seed)`` (Sionna keeps its generator in ``sionna.phy.config``), so
a dataset is reproducible shard by shard.

Layout of ``out/``: ``description.json`` (config, array, frequencies, normalisation, splits,
shards with sha256) and ``shard_00000.npz`` ... (``x``, ``scale``, and ``position_m`` [n, 3]
for UMi). Splits are contiguous sample ranges in shard order (samples are i.i.d.).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DESCRIPTION = "description.json"
SPLITS = ("train", "val", "test")


class CsiDataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["cdl", "umi"] = Field(description="Sionna 38.901 channel model family")
    cdl_profile: Literal["A", "B", "C", "D", "E"] = Field("C", description="CDL profile (source cdl)")
    delay_spread_ns: float = Field(100.0, gt=0, description="CDL delay spread (source cdl)")
    carrier_frequency_ghz: float = Field(3.5, gt=0)
    bandwidth_mhz: float = Field(50.0, gt=0, description="span of the subcarriers")
    bs_array_rows: int = Field(4, ge=1, description="BS UPA rows (vertical)")
    bs_array_cols: int = Field(8, ge=1, description="BS UPA columns (horizontal)")
    num_subcarriers: int = Field(32, ge=1)
    ue_speed_kmh: float = Field(3.0, ge=0, description="UE speed (CDL Doppler; one snapshot per sample)")
    num_samples: int = Field(2000, ge=1)
    shard_size: int = Field(1000, ge=1, description="samples per shard file")
    split_fractions: tuple[float, float, float] = Field((0.4, 0.4, 0.2),
                                                        description="train, val, test (the paper's 40/40/20)")
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _fractions(self):
        if any(f < 0 for f in self.split_fractions) or abs(sum(self.split_fractions) - 1.0) > 1e-9:
            raise ValueError(f"split_fractions must be non-negative and sum to 1, got {self.split_fractions}")
        return self

    @property
    def num_ant(self) -> int:
        return self.bs_array_rows * self.bs_array_cols


def load_data_config(path: str | Path) -> CsiDataConfig:
    """A YAML data config; errors name the field (``field: message`` lines) in a ValueError."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        return CsiDataConfig.model_validate(doc or {})
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise ValueError(f"{path}:\n" + "\n".join(lines)) from None


def _arrays(cfg: CsiDataConfig):
    from sionna.phy.channel.tr38901 import PanelArray

    fc = cfg.carrier_frequency_ghz * 1e9
    bs = PanelArray(num_rows_per_panel=cfg.bs_array_rows, num_cols_per_panel=cfg.bs_array_cols,
                    polarization="single", polarization_type="V", antenna_pattern="38.901", carrier_frequency=fc)
    ut = PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="single", polarization_type="V",
                    antenna_pattern="omni", carrier_frequency=fc)
    return ut, bs


def frequencies_hz(cfg: CsiDataConfig) -> np.ndarray:
    """Baseband frequencies of the subcarriers, [num_subcarriers] (Sionna's centred layout)."""
    from sionna.phy.channel import subcarrier_frequencies

    return subcarrier_frequencies(cfg.num_subcarriers, cfg.bandwidth_mhz * 1e6 / cfg.num_subcarriers).numpy()


def draw_shard(cfg: CsiDataConfig, n: int, seed: int) -> dict[str, np.ndarray]:
    """n samples: x [n, num_ant, num_sc, 2] float32, scale [n] float32 (+ position_m [n, 3] for UMi)."""
    import sionna.phy
    from sionna.phy.channel import cir_to_ofdm_channel, gen_single_sector_topology
    from sionna.phy.channel.tr38901 import CDL, UMi

    sionna.phy.config.seed = int(seed)
    ut, bs = _arrays(cfg)
    fc = cfg.carrier_frequency_ghz * 1e9
    out = {}
    if cfg.source == "cdl":
        v = cfg.ue_speed_kmh / 3.6
        model = CDL(cfg.cdl_profile, cfg.delay_spread_ns * 1e-9, fc, ut, bs, "downlink", min_speed=v, max_speed=v)
        a, tau = model(n, 1, 1.0)
    else:
        model = UMi(fc, "low", ut, bs, "downlink")
        topo = gen_single_sector_topology(n, 1, "umi", indoor_probability=0.0,
                                          min_ut_velocity=cfg.ue_speed_kmh / 3.6,
                                          max_ut_velocity=cfg.ue_speed_kmh / 3.6)
        model.set_topology(*topo)
        a, tau = model(1, 1.0)
        out["position_m"] = (topo[0][:, 0, :] - topo[1][:, 0, :]).numpy().astype(np.float32)
    h = cir_to_ofdm_channel(frequencies_hz(cfg), a, tau).numpy()           # [n, 1, 1, 1, ant, 1, sc]
    h = h[:, 0, 0, 0, :, 0, :].astype(np.complex128)                       # [n, ant, sc]
    scale = np.sqrt(np.mean(np.abs(h) ** 2, axis=(1, 2)))
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise FloatingPointError("a drawn channel has zero or non-finite power")
    h = h / scale[:, None, None]
    out["x"] = np.stack([h.real, h.imag], axis=-1).astype(np.float32)
    out["scale"] = scale.astype(np.float32)
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_ranges(num_samples: int, fractions) -> dict[str, tuple[int, int]]:
    """Contiguous [start, stop) sample ranges per split."""
    edges = np.round(np.cumsum([0.0, *fractions]) * num_samples).astype(int)
    edges[-1] = num_samples
    return {name: (int(edges[i]), int(edges[i + 1])) for i, name in enumerate(SPLITS)}


def shard_seeds(cfg: CsiDataConfig) -> list[int]:
    """Sionna seed of every shard: the i-th child of SeedSequence(cfg.seed)."""
    n = (cfg.num_samples + cfg.shard_size - 1) // cfg.shard_size
    return [int(ss.generate_state(1)[0]) for ss in np.random.SeedSequence(cfg.seed).spawn(n)]


def redraw_shard(cfg: CsiDataConfig, index: int) -> dict[str, np.ndarray]:
    """Shard ``index`` of the dataset ``cfg`` describes, drawn again (same seed, same samples)."""
    seeds = shard_seeds(cfg)
    if not 0 <= index < len(seeds):
        raise ValueError(f"shard index {index} out of range 0..{len(seeds) - 1}")
    return draw_shard(cfg, min(cfg.shard_size, cfg.num_samples - index * cfg.shard_size), seeds[index])


def array_sha256(x: np.ndarray) -> str:
    """sha256 of an array's bytes (C order), to check that redrawn samples are the same."""
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def generate_dataset(cfg: CsiDataConfig, out: str | Path, progress=None) -> Path:
    """Draw and write the dataset; returns the path of description.json. Refuses a non-empty ``out``
    holding a description of a different config."""
    out = Path(out)
    desc_path = out / DESCRIPTION
    if desc_path.exists():
        old = json.loads(desc_path.read_text()).get("config")
        if old != json.loads(cfg.model_dump_json()):
            raise ValueError(f"{out} holds a CSI dataset of a different config; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    seeds = shard_seeds(cfg)
    shards = []
    for i, seed in enumerate(seeds):
        n = min(cfg.shard_size, cfg.num_samples - i * cfg.shard_size)
        arrays = draw_shard(cfg, n, seed)
        path = out / f"shard_{i:05d}.npz"
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        shards.append({"file": path.name, "num_samples": n, "sha256": _sha256(path),
                       "x_sha256": array_sha256(arrays["x"])})
        if progress is not None:
            progress(i + 1, len(seeds))
    desc = {
        "kind": "airtune csi dataset",
        "config": json.loads(cfg.model_dump_json()),
        "shape": [cfg.num_ant, cfg.num_subcarriers, 2],
        "layout": "x [n, num_ant, num_subcarriers, 2] float32 (real, imag); antenna index = UPA row-major",
        "array": {"rows": cfg.bs_array_rows, "cols": cfg.bs_array_cols, "spacing_wavelengths": 0.5,
                  "polarization": "V", "pattern": "38.901"},
        "carrier_frequency_hz": cfg.carrier_frequency_ghz * 1e9,
        "frequencies_hz": [float(f) for f in frequencies_hz(cfg)],
        "normalisation": "per sample: x = H / sqrt(mean |H|^2); the divisor is stored as `scale`",
        "splits": split_ranges(cfg.num_samples, cfg.split_fractions),
        "shards": shards,
    }
    desc_path.write_text(json.dumps(desc, indent=2))
    return desc_path


def read_description(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / DESCRIPTION
    if not path.exists():
        raise ValueError(f"{path}: no CSI dataset description (make one with `airtune data csi`)")
    desc = json.loads(path.read_text())
    desc["_dir"] = str(path.parent)
    return desc


def iter_split(desc: dict, split: str, verify: bool = True) -> Iterator[np.ndarray]:
    """Samples x [num_ant, num_sc, 2] of one split, in order, shard by shard."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    start, stop = desc["splits"][split]
    offset = 0
    for shard in desc["shards"]:
        lo, hi = max(start - offset, 0), min(stop - offset, shard["num_samples"])
        if lo < hi:
            path = Path(desc["_dir"]) / shard["file"]
            if verify and _sha256(path) != shard["sha256"]:
                raise ValueError(f"{path}: sha256 does not match the dataset description")
            with np.load(path, allow_pickle=False) as data:
                x = data["x"][lo:hi]
            yield from x
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
