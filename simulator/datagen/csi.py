"""CSI datasets drawn from Sionna's 38.901 CDL and UMi models and Sionna RT (``airtune data csi``);
the format they are written in (shards, description, splits, tracks, normalisation) and its
readers are ``models/csi_codec/data.py``'s.

A sample is the downlink channel from a BS uniform planar array (rows x cols, vertical
polarisation, 38.901 element pattern) to a single-antenna UE (omni) on ``num_subcarriers``
frequencies spread evenly over ``bandwidth_mhz`` around the carrier:
H [num_ant, num_subcarriers] complex, num_ant = rows * cols (antenna index = row-major
element order of Sionna's PanelArray), one snapshot per sample, stored normalised.

- ``cdl``: 38.901 CDL-A..E with the given delay spread; every sample is an independent draw
  (the clusters of a CDL profile are fixed; the rays' phases and couplings are random), so a
  profile is one stationary environment and another profile a controlled shift.
- ``umi``: 38.901 UMi with path loss and shadow fading, one outdoor UE dropped per sample in a
  single sector (Sionna's ``gen_single_sector_topology``); positions relative to the BS are
  stored.
- ``cdl_track``: a UE moving at ``ue_speed_kmh`` through ONE CDL realisation, sampled every
  ``track_spacing_m`` metres: one CDL call with num_time_steps = num_samples and
  sampling_frequency = speed / spacing, so the fading is continuous from sample to sample (the
  CDL draws the direction of travel at random; ``position_m`` is stored as [distance, 0, 0]).
  The whole track is generated in one call (Sionna's CDL has no time offset to continue a
  realisation), which bounds its length by memory: ~0.12 MB per sample for a 32-antenna BS and
  CDL-C (24 clusters x 20 rays), i.e. ~1 GB for 8000 samples.
- ``ray_traced``: Sionna RT in one of its bundled scenes (``simulator/datagen/raytrace.py``), with
  the settings under ``ray_traced:``: either ``area`` (random UE drops in a rectangle; drops
  under a roof or with no path are replaced and counted in the description's ``dropped``) or
  ``track`` (a UE driving a polyline, one sample every ``spacing_m``; a position without a path
  is an error naming it). ``position_m`` [n, 3] is stored for every sample.

Randomness: shard i is drawn with Sionna's seed set to the i-th child of ``SeedSequence(seed)``
(Sionna keeps its generator in ``sionna.phy.config``), so a dataset is reproducible shard by shard.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.csi_codec.data import DESCRIPTION, read_description, split_ranges, write_description, write_shard
from simulator.datagen.raytrace import RayTracedConfig, TrackConfig, area_in_worker, track_in_worker
from simulator.loader import load_yaml_config


class CsiDataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["cdl", "umi", "cdl_track", "ray_traced"] = Field(
        description="cdl/umi: i.i.d. 38.901 draws; cdl_track: a UE moving through one CDL realisation; "
                    "ray_traced: Sionna RT in a bundled scene (settings under `ray_traced`)")
    cdl_profile: Literal["A", "B", "C", "D", "E"] = Field("C", description="CDL profile (source cdl)")
    delay_spread_ns: float = Field(100.0, gt=0, description="CDL delay spread (source cdl)")
    carrier_frequency_ghz: float = Field(3.5, gt=0)
    bandwidth_mhz: float = Field(50.0, gt=0, description="span of the subcarriers")
    bs_array_rows: int = Field(4, ge=1, description="BS UPA rows (vertical)")
    bs_array_cols: int = Field(8, ge=1, description="BS UPA columns (horizontal)")
    num_subcarriers: int = Field(32, ge=1)
    ue_speed_kmh: float = Field(3.0, ge=0, description="UE speed (CDL Doppler; one snapshot per sample; "
                                                        "cdl_track: the speed along the track, > 0)")
    track_spacing_m: float | None = Field(None, gt=0, description="cdl_track: metres between consecutive samples")
    ray_traced: RayTracedConfig | None = Field(None, description="source ray_traced: scene, BS, tracer and "
                                                                 "sampling mode (area or track)")
    num_samples: int = Field(2000, ge=1, description="samples in the dataset (a ray-traced track: may be omitted, "
                                                     "it follows from the track's length and spacing)")
    shard_size: int = Field(1000, ge=1, description="samples per shard file")
    split_fractions: tuple[float, float, float] = Field((0.4, 0.4, 0.2),
                                                        description="train, val, test (the paper's 40/40/20)")
    seed: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _track_length(cls, data):
        """A ray-traced track without num_samples gets the number of positions on the track."""
        if isinstance(data, dict) and data.get("source") == "ray_traced" and "num_samples" not in data:
            track = (data.get("ray_traced") or {}).get("track") if isinstance(data.get("ray_traced"), dict) else None
            if isinstance(track, dict):
                try:
                    data = {**data, "num_samples": TrackConfig.model_validate(track).num_positions}
                except ValidationError:
                    pass                                   # reported with its field path below
        return data

    @model_validator(mode="after")
    def _fractions(self):
        if any(f < 0 for f in self.split_fractions) or abs(sum(self.split_fractions) - 1.0) > 1e-9:
            raise ValueError(f"split_fractions must be non-negative and sum to 1, got {self.split_fractions}")
        return self

    @model_validator(mode="after")
    def _source_settings(self):
        if (self.source == "ray_traced") != (self.ray_traced is not None):
            raise ValueError(f"`ray_traced` settings go with (and only with) source: ray_traced (source: {self.source})")
        if (self.source == "cdl_track") != (self.track_spacing_m is not None):
            raise ValueError(f"track_spacing_m goes with (and only with) source: cdl_track (source: {self.source})")
        if self.source == "cdl_track" and self.ue_speed_kmh <= 0:
            raise ValueError(f"ue_speed_kmh must be > 0 for cdl_track, got {self.ue_speed_kmh}")
        track = self.ray_traced.track if self.ray_traced is not None else None
        if track is not None and track.num_positions != self.num_samples:
            raise ValueError(f"num_samples {self.num_samples} disagrees with ray_traced.track: {track.length_m:.2f} m "
                             f"every {track.spacing_m} m is {track.num_positions} positions (omit num_samples)")
        return self

    @property
    def track(self) -> dict | None:
        """The description's track block (spacing_m, length_m, waypoints_m) for track sources, else None."""
        if self.source == "cdl_track":
            length = (self.num_samples - 1) * self.track_spacing_m
            return {"spacing_m": self.track_spacing_m, "length_m": length,
                    "waypoints_m": [[0.0, 0.0, 0.0], [length, 0.0, 0.0]]}
        if self.ray_traced is not None and self.ray_traced.track is not None:
            t = self.ray_traced.track
            return {"spacing_m": t.spacing_m, "length_m": t.length_m, "waypoints_m": [list(w) for w in t.waypoints_m]}
        return None

    @property
    def num_ant(self) -> int:
        return self.bs_array_rows * self.bs_array_cols


def load_data_config(path: str | Path) -> CsiDataConfig:
    """A YAML data config; raises ConfigError (a ValueError) with field paths and YAML lines."""
    return load_yaml_config(path, CsiDataConfig, what="data config")


def _arrays(cfg: CsiDataConfig):
    # sionna imports TensorFlow: imported where samples are drawn, so a config error is reported without it
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


def _normalise(h: np.ndarray) -> dict[str, np.ndarray]:
    """H [n, ant, sc] complex -> x [n, ant, sc, 2] float32 with unit mean power per sample, scale [n] float32."""
    h = h.astype(np.complex128)
    scale = np.sqrt(np.mean(np.abs(h) ** 2, axis=(1, 2)))
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise FloatingPointError("a drawn channel has zero or non-finite power")
    h = h / scale[:, None, None]
    return {"x": np.stack([h.real, h.imag], axis=-1).astype(np.float32), "scale": scale.astype(np.float32)}


@functools.lru_cache(maxsize=1)
def _cdl_track(cfg: CsiDataConfig) -> np.ndarray:
    """The whole cdl_track, H [num_samples, ant, sc] complex: one CDL realisation sampled in time."""
    import sionna.phy
    from sionna.phy.channel import cir_to_ofdm_channel
    from sionna.phy.channel.tr38901 import CDL

    sionna.phy.config.seed = shard_seeds(cfg)[0]
    ut, bs = _arrays(cfg)
    v = cfg.ue_speed_kmh / 3.6
    model = CDL(cfg.cdl_profile, cfg.delay_spread_ns * 1e-9, cfg.carrier_frequency_ghz * 1e9, ut, bs, "downlink",
                min_speed=v, max_speed=v)
    a, tau = model(1, cfg.num_samples, v / cfg.track_spacing_m)              # a [1, 1, 1, 1, ant, paths, T]
    h = cir_to_ofdm_channel(frequencies_hz(cfg), a, tau).numpy()            # [1, 1, 1, 1, ant, T, sc]
    return np.transpose(h[0, 0, 0, 0], (1, 0, 2))


def _draw(cfg: CsiDataConfig, n: int, seed: int, first: int) -> tuple[dict[str, np.ndarray], dict]:
    """Samples first..first+n-1 (tracks) or n fresh draws with ``seed`` (i.i.d. sources): arrays, and
    what the description records per shard (ray-traced areas: the candidates dropped)."""
    if cfg.source == "cdl_track":
        out = _normalise(_cdl_track(cfg)[first:first + n])
        d = np.arange(first, first + n, dtype=np.float64) * cfg.track_spacing_m
        out["distance_m"] = d
        out["position_m"] = np.stack([d, np.zeros(n), np.zeros(n)], axis=1)
        return out, {}
    if cfg.source == "ray_traced":
        setup = (cfg.ray_traced, cfg.carrier_frequency_ghz * 1e9, cfg.bs_array_rows, cfg.bs_array_cols, cfg.seed)
        if cfg.ray_traced.track is not None:
            h, pos, dist = track_in_worker(*setup, first, first + n, frequencies_hz(cfg))
            return {**_normalise(h), "position_m": pos, "distance_m": dist}, {}
        h, pos, dropped = area_in_worker(*setup, n, frequencies_hz(cfg), seed)
        return {**_normalise(h), "position_m": pos.astype(np.float32)}, {"dropped": dropped}
    import sionna.phy
    from sionna.phy.channel import cir_to_ofdm_channel, gen_single_sector_topology
    from sionna.phy.channel.tr38901 import CDL, UMi

    sionna.phy.config.seed = int(seed)
    ut, bs = _arrays(cfg)
    fc = cfg.carrier_frequency_ghz * 1e9
    extra = {}
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
        extra["position_m"] = (topo[0][:, 0, :] - topo[1][:, 0, :]).numpy().astype(np.float32)
    h = cir_to_ofdm_channel(frequencies_hz(cfg), a, tau).numpy()           # [n, 1, 1, 1, ant, 1, sc]
    return {**_normalise(h[:, 0, 0, 0, :, 0, :]), **extra}, {}


def draw_shard(cfg: CsiDataConfig, n: int, seed: int, first: int = 0) -> dict[str, np.ndarray]:
    """n samples: x [n, num_ant, num_sc, 2] float32, scale [n] float32 (+ position_m [n, 3] for UMi and
    ray tracing, + distance_m [n] float64 for tracks, whose samples are first..first+n-1)."""
    return _draw(cfg, n, seed, first)[0]


def _config_json(cfg: CsiDataConfig) -> dict:
    """The config as stored in description.json (unset optional blocks left out, so descriptions
    written before a block existed still match)."""
    return json.loads(cfg.model_dump_json(exclude_none=True))


def shard_seeds(cfg: CsiDataConfig) -> list[int]:
    """Sionna seed of every shard: the i-th child of SeedSequence(cfg.seed)."""
    n = (cfg.num_samples + cfg.shard_size - 1) // cfg.shard_size
    return [int(ss.generate_state(1)[0]) for ss in np.random.SeedSequence(cfg.seed).spawn(n)]


def redraw_shard(cfg: CsiDataConfig, index: int) -> dict[str, np.ndarray]:
    """Shard ``index`` of the dataset ``cfg`` describes, drawn again (same seed, same samples)."""
    seeds = shard_seeds(cfg)
    if not 0 <= index < len(seeds):
        raise ValueError(f"shard index {index} out of range 0..{len(seeds) - 1}")
    return draw_shard(cfg, min(cfg.shard_size, cfg.num_samples - index * cfg.shard_size), seeds[index],
                      first=index * cfg.shard_size)


def generate_dataset(cfg: CsiDataConfig, out: str | Path, progress=None) -> Path:
    """Draw and write the dataset; returns the path of description.json. Refuses a non-empty ``out``
    holding a description of a different config."""
    out = Path(out)
    if (out / DESCRIPTION).exists() and read_description(out)["config"] != _config_json(cfg):
        raise ValueError(f"{out} holds a CSI dataset of a different config; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    seeds = shard_seeds(cfg)
    shards = []
    for i, seed in enumerate(seeds):
        arrays, meta = _draw(cfg, min(cfg.shard_size, cfg.num_samples - i * cfg.shard_size), seed, i * cfg.shard_size)
        shards.append(write_shard(out / f"shard_{i:05d}.npz", arrays, **meta))
        if progress is not None:
            progress(i + 1, len(seeds))
    dropped = None
    if cfg.source == "ray_traced" and cfg.ray_traced.area is not None:
        dropped = {k: sum(s["dropped"][k] for s in shards) for k in ("covered", "no_path")}
        dropped["note"] = ("UE candidates replaced: covered = under a roof or inside a building, "
                           "no_path = outdoors but no path within max_depth")
    array = {"rows": cfg.bs_array_rows, "cols": cfg.bs_array_cols, "spacing_wavelengths": 0.5,
             "polarization": "V", "pattern": "38.901"}
    return write_description(out, _config_json(cfg), array=array, carrier_frequency_hz=cfg.carrier_frequency_ghz * 1e9,
                             frequencies_hz=frequencies_hz(cfg),
                             splits=split_ranges(cfg.num_samples, cfg.split_fractions), shards=shards,
                             track=cfg.track, dropped=dropped)
