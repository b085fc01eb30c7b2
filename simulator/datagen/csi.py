"""CSI datasets drawn from Sionna's 38.901 CDL and UMi models, Sionna RT, and a scenario's own
fading channel (``airtune data csi``); the format they are written in (shards, description,
splits, tracks, normalisation) and its readers are ``models/csi_codec/data.py``'s.

A sample is the downlink channel from a BS uniform planar array (rows x cols, vertical
polarisation, 38.901 element pattern) to a single-antenna UE (omni) on ``num_subcarriers``
frequencies spread evenly over ``bandwidth_mhz`` around the carrier:
H [num_ant, num_subcarriers] complex, num_ant = rows * cols (antenna index = row-major
element order of Sionna's PanelArray), one snapshot per sample, stored normalised. Source
``scenario`` takes the array, carrier and channel from a scenario instead (below).

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
- ``scenario``: the channel a scenario's UE measures at CSI-RS (``scenario:``, a scenario YAML,
  relative to the working directory), on the grid a neural CSI report compresses it on
  (``simulator/csi/codec_grid.py``): the scenario's gNB array (its port order), carrier, channel
  model (tdl/cdl, profile, delay spread, or UMi/UMa at the UE's position), UE antennas and first UE's
  drive (static: speed 0; ``drop_ues: all``: drop k follows UE k mod the scenario's UE count, so a
  cell's codec sees all its UEs' positions, speeds and headings), so a codec
  trained on it fits ``csi_rs.report.kind: neural`` in that scenario. Those fields of this config
  (``SET_BY_SCENARIO``) are refused when given. Each drop is one ``FadingChannel`` realisation, built
  as the engine builds a UE's (one fading sample per slot of travel at the UE's speed), from which
  ``occasions_per_drop`` CSI-RS occasions (one every ``csi_rs.period_ms``) are taken; every UE
  antenna's matrix at an occasion is one sample (sample order: drop, occasion, UE antenna),
  ``CodecGrid.to_codec`` of ``cfr_slot``: x [gnb_ant, num_subcarriers, 2], num_subcarriers spread
  over the carrier's 12 x num_prbs, unit mean power; ``scale`` is the RMS it divided by and
  ``distance_m`` the UE's travel within its drop. ``num_subcarriers`` must leave no subband of
  ``csi_rs.report.subband_prbs`` without a sample. The description holds the resolved scenario.
  With ``channel.model: ray_traced`` every drop retraces the same drive (the scene is
  deterministic): set occasions_per_drop to cover the drive instead of drawing many drops.

Randomness: shard i is drawn with Sionna's seed set to the i-th child of ``SeedSequence(seed)``
(Sionna keeps its generator in ``sionna.phy.config``), so a dataset is reproducible shard by shard.
Source ``scenario`` seeds per drop instead: drop k's channel seed is the k-th child of
``SeedSequence(seed)``, so the samples do not depend on ``shard_size``.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.config import FieldError
from models.csi_codec.data import DESCRIPTION, read_description, split_ranges, write_description, write_shard
from simulator.channel.fading import FadingChannel
from simulator.csi.codec_grid import CodecGrid, grid_misfit
from simulator.datagen.raytrace import RayTracedConfig, TrackConfig, area_in_worker, track_in_worker
from simulator.loader import ConfigError, load_scenario, load_yaml_config, scenario_to_dict
from simulator.mobility import Mobility
from simulator.processes.csi_rs import CsiRsSetup
from simulator.schema import Scenario

# What a scenario sets with source: scenario (given in the data config as well, they are refused).
SET_BY_SCENARIO = ("cdl_profile", "delay_spread_ns", "carrier_frequency_ghz", "bandwidth_mhz", "bs_array_rows",
                   "bs_array_cols", "ue_speed_kmh")
DEFAULT_OCCASIONS_PER_DROP = 25


class CsiDataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    source: Literal["cdl", "umi", "cdl_track", "ray_traced", "scenario"] = Field(
        description="cdl/umi: i.i.d. 38.901 draws; cdl_track: a UE moving through one CDL realisation; "
                    "ray_traced: Sionna RT in a bundled scene (settings under `ray_traced`); scenario: "
                    "the channel a scenario's UE measures at CSI-RS, on the neural report's grid")
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
    scenario: str | None = Field(None, description="source scenario: the scenario YAML (relative to the working "
                                                    "directory) whose gNB array, carrier, channel, UE antennas and "
                                                    "first UE's speed the samples are drawn with")
    drop_ues: Literal["first", "all"] = Field("first", description="source scenario: whose drive each drop follows: "
                                                                    "the first UE's (every drop), or drop k the "
                                                                    "scenario's UE k mod its UE count (its start, "
                                                                    "heading and speed: a cell's positions)")
    occasions_per_drop: int | None = Field(None, ge=1, description="source scenario: CSI-RS occasions taken from "
                                                                   "each drop, one every csi_rs.period_ms (each "
                                                                   "gives one sample per UE antenna; default "
                                                                   f"{DEFAULT_OCCASIONS_PER_DROP})")
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

    @model_validator(mode="before")
    @classmethod
    def _occasions_default(cls, data):
        """Source scenario without occasions_per_drop gets the default (other sources: none)."""
        if isinstance(data, dict) and data.get("source") == "scenario" and "occasions_per_drop" not in data:
            data = {**data, "occasions_per_drop": DEFAULT_OCCASIONS_PER_DROP}
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

    @model_validator(mode="after")
    def _scenario_source(self):
        """Source scenario: the scenario loads, this config does not restate what it sets, and the codec
        grid fits its array and carrier."""
        if self.source != "scenario":
            if self.scenario is not None or self.occasions_per_drop is not None or "drop_ues" in self.model_fields_set:
                raise FieldError("scenario" if self.scenario is not None else
                                 "occasions_per_drop" if self.occasions_per_drop is not None else "drop_ues",
                                 f"goes with (and only with) source: scenario (source: {self.source})")
            return self
        if self.scenario is None:
            raise FieldError("scenario", "required with source: scenario (a scenario YAML)")
        given = [name for name in SET_BY_SCENARIO if name in self.model_fields_set]
        if given:
            raise FieldError(given[0], f"is the scenario's with source: scenario ({self.scenario}); leave it out")
        sc = scenario_of(self)
        misfit = grid_misfit(sc.gnb.num_antennas, self.num_subcarriers, sc.gnb.num_antennas, sc.carrier.num_prbs,
                             sc.csi_rs.report.subband_prbs)
        if misfit is not None:
            raise FieldError("num_subcarriers", misfit)
        for i, ue in enumerate(sc.ues if self.drop_ues == "all" else sc.ues[:1]):
            if Mobility(ue.mobility).speed_mps == 0 and self.occasions_per_drop > 1:
                raise FieldError("occasions_per_drop", f"the scenario's UE {ue.id} (ues.{i}) is static, so every "
                                                       f"occasion of its drops sees the same channel: use 1 (got "
                                                       f"{self.occasions_per_drop})")
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
        if self.source == "scenario":
            return scenario_of(self).gnb.num_antennas
        return self.bs_array_rows * self.bs_array_cols


def scenario_of(cfg: CsiDataConfig) -> Scenario:
    """The scenario of a source-scenario config, read from its file (a FieldError on ``scenario`` if it
    cannot be)."""
    try:
        return load_scenario(cfg.scenario)
    except ConfigError as exc:
        head = f"{exc.source}: invalid scenario: " if exc.source else ""
        raise FieldError("scenario", head + "; ".join(exc.errors)) from None


def _grid(cfg: CsiDataConfig, sc: Scenario) -> CodecGrid:
    """The neural report's grid of ``num_subcarriers`` on the scenario's array and carrier."""
    return CodecGrid(sc.gnb.num_antennas, cfg.num_subcarriers, sc.gnb.num_antennas, sc.carrier.num_prbs,
                     sc.csi_rs.report.subband_prbs)


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
    """Baseband frequencies of the subcarriers, [num_subcarriers] (Sionna's centred layout; source
    scenario: the carrier's subcarriers the codec grid samples)."""
    from sionna.phy.channel import subcarrier_frequencies

    if cfg.source == "scenario":
        sc = scenario_of(cfg)
        carrier = subcarrier_frequencies(sc.carrier.num_subcarriers, sc.carrier.subcarrier_spacing_khz * 1e3).numpy()
        return carrier[_grid(cfg, sc).sample_sc]
    return subcarrier_frequencies(cfg.num_subcarriers, cfg.bandwidth_mhz * 1e6 / cfg.num_subcarriers).numpy()


def _check_power(scale: np.ndarray) -> None:
    if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
        raise FloatingPointError("a drawn channel has zero or non-finite power")


def _normalise(h: np.ndarray) -> dict[str, np.ndarray]:
    """H [n, ant, sc] complex -> x [n, ant, sc, 2] float32 with unit mean power per sample, scale [n] float32."""
    h = h.astype(np.complex128)
    scale = np.sqrt(np.mean(np.abs(h) ** 2, axis=(1, 2)))
    _check_power(scale)
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


def _scenario_samples(cfg: CsiDataConfig, first: int, n: int) -> dict[str, np.ndarray]:
    """Samples first..first+n-1 of a source-scenario dataset (module docstring): x [n, gnb_ant, num_sc, 2]
    float32, scale [n] float32, distance_m [n] float64; the drops they fall in are drawn whole."""
    sc = scenario_of(cfg)
    grid = _grid(cfg, sc)
    num_ue_ant, slot_us = sc.phy.num_ue_antennas, sc.carrier.slot_us
    per_drop = cfg.occasions_per_drop * num_ue_ant
    slots = np.arange(cfg.occasions_per_drop) * (CsiRsSetup.of(sc).period_us // slot_us)   # CSI-RS at 0, P, 2P...
    num_slots = int(slots[-1]) + 1
    first_drop, stop_drop = first // per_drop, (first + n - 1) // per_drop + 1
    xs, scales, distances = [], [], []
    for k, child in enumerate(np.random.SeedSequence(cfg.seed).spawn(stop_drop)[first_drop:], start=first_drop):
        ue_index = k % len(sc.ues) if cfg.drop_ues == "all" else 0
        mob = Mobility(sc.ues[ue_index].mobility)
        speed_mps = mob.speed_mps
        # engine.build_ue's sample_of_slot, rint(distance / step), for a UE at constant speed: the slot index
        sample_of_slot = np.arange(num_slots) if speed_mps > 0 else np.zeros(num_slots, np.int64)
        channel = FadingChannel(sc.channel, sc.carrier, num_ue_ant, speed_mps, sample_of_slot,
                                int(child.generate_state(1)[0]), gnb=sc.gnb,
                                start_position_m=mob.position_m([0.0])[0], velocity_mps=mob.velocity_mps([0.0])[0],
                                mobility=mob, ue_field=f"ues.{ue_index}.mobility")
        h = channel.cfr(slots)                                           # [occasions, ue_ant, gnb_ant, 12 PRBs]
        x = grid.to_codec(h)                                             # [occasions, ue_ant, gnb_ant, num_sc, 2]
        xs.append(x.reshape(per_drop, *x.shape[2:]))
        scales.append(np.sqrt(np.mean(np.abs(h[..., grid.sample_sc]) ** 2, axis=(-2, -1))).reshape(per_drop))
        distances.append(np.repeat(slots * slot_us * 1e-6 * speed_mps, num_ue_ant))
    scale = np.concatenate(scales)
    _check_power(scale)
    distance_m = np.concatenate(distances)
    lo = first - first_drop * per_drop
    return {"x": np.concatenate(xs)[lo:lo + n], "scale": scale[lo:lo + n].astype(np.float32),
            "distance_m": distance_m[lo:lo + n]}


def _draw(cfg: CsiDataConfig, n: int, seed: int, first: int) -> tuple[dict[str, np.ndarray], dict]:
    """Samples first..first+n-1 (tracks) or n fresh draws with ``seed`` (i.i.d. sources): arrays, and
    what the description records per shard (ray-traced areas: the candidates dropped). Source scenario:
    samples first..first+n-1, seeded per drop (``seed`` unused)."""
    if cfg.source == "scenario":
        return _scenario_samples(cfg, first, n), {}
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
    ray tracing, + distance_m [n] float64 for tracks and source scenario, whose samples are
    first..first+n-1)."""
    return _draw(cfg, n, seed, first)[0]


def _config_json(cfg: CsiDataConfig) -> dict:
    """The config as stored in description.json (unset optional blocks left out, so descriptions
    written before a block existed still match; source scenario: without the fields the scenario sets)."""
    return json.loads(cfg.model_dump_json(exclude_none=True,
                                          exclude=set(SET_BY_SCENARIO) if cfg.source == "scenario" else None))


def shard_seeds(cfg: CsiDataConfig) -> list[int]:
    """Sionna seed of every shard: the i-th child of SeedSequence(cfg.seed) (unused by source scenario,
    which seeds each drop)."""
    n = (cfg.num_samples + cfg.shard_size - 1) // cfg.shard_size
    return [int(ss.generate_state(1)[0]) for ss in np.random.SeedSequence(cfg.seed).spawn(n)]


def redraw_shard(cfg: CsiDataConfig, index: int) -> dict[str, np.ndarray]:
    """Shard ``index`` of the dataset ``cfg`` describes, drawn again (same seed, same samples)."""
    seeds = shard_seeds(cfg)
    if not 0 <= index < len(seeds):
        raise ValueError(f"shard index {index} out of range 0..{len(seeds) - 1}")
    return draw_shard(cfg, min(cfg.shard_size, cfg.num_samples - index * cfg.shard_size), seeds[index],
                      first=index * cfg.shard_size)


def _array(cfg: CsiDataConfig, sc: Scenario | None) -> dict:
    """The description's BS array: the config's UPA, or the scenario's gNB (source scenario, ``sc``)."""
    if sc is None:
        return {"rows": cfg.bs_array_rows, "cols": cfg.bs_array_cols, "spacing_wavelengths": 0.5,
                "polarization": "V", "pattern": "38.901", "ports": cfg.num_ant, "port_order": "UPA row-major"}
    g = sc.gnb
    return {"rows": g.antenna_rows, "cols": g.antenna_cols, "spacing_wavelengths": g.element_spacing_wavelengths,
            "polarization": g.polarization, "pattern": "none (TDL)" if sc.channel.model == "tdl" else "38.901",
            "ports": g.num_antennas, "port_order": "the scenario's gNB ports (simulator.schema.GnbConfig.num_antennas)"}


def generate_dataset(cfg: CsiDataConfig, out: str | Path, progress=None) -> Path:
    """Draw and write the dataset; returns the path of description.json. Refuses a non-empty ``out``
    holding a description of a different config."""
    out = Path(out)
    sc = scenario_of(cfg) if cfg.source == "scenario" else None
    resolved = scenario_to_dict(sc) if sc is not None else None
    if (out / DESCRIPTION).exists():
        old = read_description(out)
        if old["config"] != _config_json(cfg) or old.get("scenario") != resolved:
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
    carrier_ghz = cfg.carrier_frequency_ghz if sc is None else sc.carrier.carrier_frequency_ghz
    return write_description(out, _config_json(cfg), array=_array(cfg, sc), carrier_frequency_hz=carrier_ghz * 1e9,
                             frequencies_hz=frequencies_hz(cfg),
                             splits=split_ranges(cfg.num_samples, cfg.split_fractions), shards=shards,
                             track=cfg.track, dropped=dropped, scenario=resolved)
