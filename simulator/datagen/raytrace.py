"""Ray-traced downlink CSI, the ``ray_traced`` source of the CSI datasets (``simulator/datagen/csi.py``):
a BS (``PlanarArray``: rows x cols, 0.5-wavelength spacing, vertical polarisation, "tr38901" element
pattern) in one of Sionna RT's bundled scenes (``simulator.channel.ray_tracer``), and single-antenna
UEs ("iso" pattern, V-pol) dropped in an area or driving a track. ``Paths.cfr`` gives H [num_rx,
num_ant, num_subcarriers] at the baseband frequencies (``normalize_delays=True``: the first path of
every UE arrives at 0, as after timing synchronisation). Tracing runs in the ray-tracing worker
process (``simulator.channel.rt_worker``: drjit and TensorFlow do not share a process).
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simulator.channel.ray_tracer import RayTracer, ray_tracer
from simulator.channel.ray_tracing_config import RayTracingConfig
from simulator.channel.rt_worker import run_in_worker


class AreaConfig(BaseModel):
    """UEs dropped uniformly at random in a rectangle (static-environment training set)."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    corners_m: tuple[tuple[float, float], tuple[float, float]] = Field(
        description="[[xmin, ymin], [xmax, ymax]] of the rectangle the UEs are dropped in (scene coordinates)")
    ue_height_m: float = Field(1.5, description="UE z coordinate (the bundled scenes have their ground at z = 0)")

    @field_validator("corners_m")
    @classmethod
    def _ordered(cls, v):
        (x0, y0), (x1, y1) = v
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"need xmin < xmax and ymin < ymax, got {[list(c) for c in v]}")
        return v


class TrackConfig(BaseModel):
    """A UE driving along a polyline; one sample every ``spacing_m`` metres from the first waypoint."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    waypoints_m: tuple[tuple[float, float, float], ...] = Field(
        min_length=2, description="[[x, y, z], ...] corners of the polyline the UE drives along, in order")
    spacing_m: float = Field(gt=0, description="distance between consecutive samples along the track")

    @field_validator("waypoints_m")
    @classmethod
    def _distinct(cls, v):
        for i in range(1, len(v)):
            if v[i] == v[i - 1]:
                raise ValueError(f"waypoints {i - 1} and {i} coincide at {list(v[i])}")
        return v

    @property
    def length_m(self) -> float:
        w = np.asarray(self.waypoints_m, np.float64)
        return float(np.sum(np.linalg.norm(np.diff(w, axis=0), axis=1)))

    @property
    def num_positions(self) -> int:
        """Positions at 0, spacing, 2 spacing, ... up to the track length (both ends included if on grid)."""
        return int(math.floor(self.length_m / self.spacing_m + 1e-9)) + 1

    def positions(self, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Positions [k, 3] and distances along the track [k] of samples start..stop-1 (float64)."""
        stop = self.num_positions if stop is None else stop
        w = np.asarray(self.waypoints_m, np.float64)
        seg = np.linalg.norm(np.diff(w, axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        d = np.arange(start, stop, dtype=np.float64) * self.spacing_m
        i = np.clip(np.searchsorted(cum, d, side="right") - 1, 0, len(seg) - 1)
        t = (d - cum[i]) / seg[i]
        return w[i] + t[:, None] * (w[i + 1] - w[i]), d


class RayTracedConfig(RayTracingConfig):
    """Settings of ``source: ray_traced``: scene, BS and tracer, and exactly one of ``area`` / ``track``."""

    bs_position_m: tuple[float, float, float] = Field(description="BS array centre [x, y, z] in scene coordinates")
    area: AreaConfig | None = Field(None, description="sampling mode area: random UE drops (num_samples of them)")
    track: TrackConfig | None = Field(None, description="sampling mode track: a UE driving a polyline; "
                                                        "num_samples follows from its length and spacing")

    @model_validator(mode="after")
    def _one_mode(self):
        if (self.area is None) == (self.track is None):
            raise ValueError("give exactly one sampling mode: `area` (random drops) or `track` (a drive)")
        return self


def draw_area(tr: RayTracer, area: AreaConfig, n: int, frequencies_hz: np.ndarray,
              rng: np.random.Generator, max_rounds: int = 100) -> tuple[np.ndarray, np.ndarray, dict]:
    """n UEs uniformly in the area, each with at least one path: H [n, ant, sc] complex128,
    positions [n, 3] float64, and counts of the candidates dropped (``covered``: under a roof or inside
    a building; ``no_path``: outdoors but no path within max_depth). Candidates are drawn in rounds
    until n are valid, in draw order (so the result depends only on the rng)."""
    (x0, y0), (x1, y1) = area.corners_m
    hs, ps = [], []
    dropped = {"covered": 0, "no_path": 0}
    have = 0
    for _ in range(max_rounds):
        need = n - have
        if need <= 0:
            break
        k = max(need + need // 2, 8)                       # some spare for the drops
        cand = np.c_[rng.uniform(x0, x1, k), rng.uniform(y0, y1, k), np.full(k, area.ue_height_m)]
        covered = tr.covered(cand)
        dropped["covered"] += int(covered.sum())
        cand = cand[~covered]
        h = tr.cfr(cand, frequencies_hz)
        ok = np.mean(np.abs(h) ** 2, axis=(1, 2)) > 0
        take = np.flatnonzero(ok)[:need]
        # candidates after the last one taken are not looked at: count only drops before it
        last = take[-1] + 1 if len(take) == need else len(cand)
        dropped["no_path"] += int(np.sum(~ok[:last]))
        hs.append(h[take])
        ps.append(cand[take])
        have += len(take)
    if have < n:
        raise ValueError(f"area {[list(c) for c in area.corners_m]}: only {have} of {n} UE positions got a path "
                         f"after {max_rounds} rounds ({dropped}); choose an area the BS covers")
    return np.concatenate(hs), np.concatenate(ps), dropped


def trace_track(tr: RayTracer, track: TrackConfig, start: int, stop: int,
                frequencies_hz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Samples start..stop-1 of the track: H [k, ant, sc] complex128, positions [k, 3], distance_m [k].
    A position without any path is an error naming it (choose a track the BS covers)."""
    pos, dist = track.positions(start, stop)
    h = tr.cfr(pos, frequencies_hz)
    bad = np.flatnonzero(~(np.mean(np.abs(h) ** 2, axis=(1, 2)) > 0))
    if len(bad):
        i = bad[0]
        raise ValueError(f"track: no path reaches the UE at sample {start + i} (position_m {pos[i].round(2).tolist()}, "
                         f"distance_m {dist[i]:.2f}); {len(bad)} of samples {start}..{stop - 1} have none. "
                         f"Choose a track the BS covers")
    return h, pos, dist


def area_in_worker(rtc: RayTracedConfig, carrier_frequency_hz: float, rows: int, cols: int, seed: int, n: int,
                   frequencies_hz: np.ndarray, rng_seed: int):
    """draw_area in the worker: H [n, ant, sc], positions [n, 3], dropped counts."""
    return run_in_worker("simulator.datagen.raytrace:_area", rtc, carrier_frequency_hz, rows, cols, seed, n,
                         frequencies_hz, rng_seed)


def track_in_worker(rtc: RayTracedConfig, carrier_frequency_hz: float, rows: int, cols: int, seed: int,
                    start: int, stop: int, frequencies_hz: np.ndarray):
    """trace_track in the worker: H [k, ant, sc], positions [k, 3], distance_m [k]."""
    return run_in_worker("simulator.datagen.raytrace:_track", rtc, carrier_frequency_hz, rows, cols, seed, start,
                         stop, frequencies_hz)


def _area(rtc, fc, rows, cols, seed, n, freqs, rng_seed):
    tr = ray_tracer(rtc, fc, rows, cols, rtc.bs_position_m, seed)
    return draw_area(tr, rtc.area, n, freqs, np.random.default_rng(rng_seed))


def _track(rtc, fc, rows, cols, seed, start, stop, freqs):
    return trace_track(ray_tracer(rtc, fc, rows, cols, rtc.bs_position_m, seed), rtc.track, start, stop, freqs)
