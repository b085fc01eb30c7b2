"""Ray-traced downlink CSI from Sionna RT 1.2.2 (mitsuba 3.8 / drjit 1.3 on the CPU through LLVM),
the ``ray_traced`` source of the CSI datasets (``simulator/datagen/csi.py``).

A BS (Transmitter with a ``PlanarArray``: rows x cols, 0.5-wavelength spacing, vertical
polarisation, "tr38901" element pattern) in one of Sionna RT's bundled scenes, and single-antenna
UEs (Receiver, "iso" pattern, V-pol) at given positions. One ``PathSolver`` call traces one
chunk of receivers; ``Paths.cfr`` gives H [num_rx, num_ant, num_subcarriers] at the baseband
frequencies (``normalize_delays=True``: the first path of every UE arrives at 0, as after timing
synchronisation). The antenna index is the ``PlanarArray`` element order, which is the same as
Sionna PHY's ``PanelArray`` (row index fastest) used by the CDL/UMi sources.

The solver's cost grows with samples_per_src x receivers per call (every ray bounce is tested
against every receiver), and more than linearly past ~100 receivers per call, so receivers are
traced in chunks of ``receivers_per_call``.

drjit needs a libLLVM: it looks for /usr/lib/x86_64-linux-gnu/libLLVM*.so.* (Debian: package
libllvm15 or later) or the path in ``DRJIT_LIBLLVM_PATH``.

Ray tracing runs in a worker process (``run_in_worker``): when TensorFlow is loaded before
drjit in one process, drjit's libLLVM binds to the LLVM symbols TensorFlow exports and the process
aborts at exit ("free(): invalid pointer" in llvm::cl::opt::~opt from libtensorflow_framework).
The worker imports drjit without TensorFlow, so callers may have imported TensorFlow already.
For the same reason ``import sionna`` must stay lazy (sionna-no-rt's ``sionna/__init__.py``):
sionna-rt's own ``__init__`` imports ``sionna.rt`` eagerly; ``make install`` restores the lazy one.
"""
from __future__ import annotations

import atexit
import functools
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# the scenes that sionna.rt.scene ships (sionna-rt 1.2.2)
SCENES = ("box", "box_knife", "box_one_screen", "box_two_screens", "double_reflector", "etoile", "floor_wall",
          "florence", "munich", "san_francisco", "simple_reflector", "simple_street_canyon",
          "simple_street_canyon_with_cars", "simple_wedge", "triple_reflector")
SceneName = Literal[SCENES]


class AreaConfig(BaseModel):
    """UEs dropped uniformly at random in a rectangle (static-environment training set)."""
    model_config = ConfigDict(extra="forbid", frozen=True)

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
    model_config = ConfigDict(extra="forbid", frozen=True)

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


class RayTracedConfig(BaseModel):
    """Settings of ``source: ray_traced``: scene, BS and tracer, and exactly one of ``area`` / ``track``."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    scene: SceneName = Field(description="one of Sionna RT's bundled scenes (sionna.rt.scene.<name>)")
    bs_position_m: tuple[float, float, float] = Field(description="BS array centre [x, y, z] in scene coordinates")
    bs_look_at_m: tuple[float, float, float] | None = Field(
        None, description="point the BS array broadside faces; default: the array faces +x, upright")
    max_depth: int = Field(3, ge=0, description="maximum number of reflections/refractions per path")
    samples_per_src: int = Field(100_000, ge=1, description="rays shot from the BS per PathSolver call")
    receivers_per_call: int = Field(128, ge=1, description="UEs traced together in one PathSolver call (speed only)")
    area: AreaConfig | None = Field(None, description="sampling mode area: random UE drops (num_samples of them)")
    track: TrackConfig | None = Field(None, description="sampling mode track: a UE driving a polyline; "
                                                        "num_samples follows from its length and spacing")

    @model_validator(mode="after")
    def _one_mode(self):
        if (self.area is None) == (self.track is None):
            raise ValueError("give exactly one sampling mode: `area` (random drops) or `track` (a drive)")
        return self


class RayTracer:
    """One bundled scene with the BS in place; ``cfr(positions)`` traces UEs there.

    cfr: positions [n, 3] float (metres) -> H [n, num_ant, num_sc] complex128 (zero rows: no path)
    """

    def __init__(self, scene: str, carrier_frequency_hz: float, rows: int, cols: int,
                 bs_position_m, bs_look_at_m=None, max_depth: int = 3, samples_per_src: int = 100_000,
                 receivers_per_call: int = 64, seed: int = 0):
        import sionna.rt as rt

        if scene not in SCENES:
            raise ValueError(f"unknown scene {scene!r}; valid: {', '.join(SCENES)}")
        self.scene = rt.load_scene(getattr(rt.scene, scene), merge_shapes=True)
        self.scene.frequency = carrier_frequency_hz
        self.scene.tx_array = rt.PlanarArray(num_rows=rows, num_cols=cols, vertical_spacing=0.5,
                                             horizontal_spacing=0.5, pattern="tr38901", polarization="V")
        self.scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
        kw = {"look_at": [float(v) for v in bs_look_at_m]} if bs_look_at_m is not None else {}
        self.scene.add(rt.Transmitter("bs", position=[float(v) for v in bs_position_m], **kw))
        self.solver = rt.PathSolver()
        self.max_depth, self.samples_per_src = int(max_depth), int(samples_per_src)
        self.receivers_per_call, self.seed = int(receivers_per_call), int(seed)
        self._rt = rt

    def covered(self, positions: np.ndarray) -> np.ndarray:
        """[n] bool: something of the scene lies above the point (inside a building or under a roof);
        a vertical ray cast from above the scene, so no path tracing is spent on such points."""
        import drjit as dr
        import mitsuba as mi

        p = np.asarray(positions, np.float64)
        top = float(self.scene.mi_scene.bbox().max.z) + 1.0
        n = len(p)
        ray = mi.Ray3f(mi.Point3f(p[:, 0], p[:, 1], np.full(n, top)), mi.Vector3f(0.0, 0.0, -1.0))
        si = self.scene.mi_scene.ray_intersect(ray)
        valid = np.asarray(si.is_valid(), bool).reshape(-1)
        hit_z = np.asarray(si.p.z, np.float64).reshape(-1)
        dr.eval()
        return valid & (hit_z > p[:, 2] + 1e-3)

    def cfr(self, positions: np.ndarray, frequencies_hz: np.ndarray) -> np.ndarray:
        p = np.asarray(positions, np.float64).reshape(-1, 3)
        out = []
        for lo in range(0, len(p), self.receivers_per_call):
            out.append(self._trace(p[lo:lo + self.receivers_per_call], frequencies_hz))
        if not out:
            return np.zeros((0, self.scene.tx_array.array_size, len(frequencies_hz)), np.complex128)
        return np.concatenate(out)

    def _trace(self, p: np.ndarray, frequencies_hz: np.ndarray) -> np.ndarray:
        for name in list(self.scene.receivers):
            self.scene.remove(name)
        for i, q in enumerate(p):
            self.scene.add(self._rt.Receiver(f"ue{i}", position=[float(v) for v in q]))
        paths = self.solver(self.scene, max_depth=self.max_depth, samples_per_src=self.samples_per_src,
                            synthetic_array=True, seed=self.seed)
        h = paths.cfr(frequencies=np.asarray(frequencies_hz, np.float64), normalize=False, out_type="numpy")
        # [num_rx, num_rx_ant=1, num_tx=1, num_tx_ant, num_time_steps=1, num_sc] -> [num_rx, ant, sc]
        return np.asarray(h, np.complex64)[:, 0, 0, :, 0, :].astype(np.complex128)


@functools.lru_cache(maxsize=2)
def tracer(rtc: RayTracedConfig, carrier_frequency_hz: float, rows: int, cols: int, seed: int) -> RayTracer:
    """A cached RayTracer (loading a scene takes ~1-2 s; shards of one dataset share it)."""
    return RayTracer(rtc.scene, carrier_frequency_hz, rows, cols, rtc.bs_position_m, rtc.bs_look_at_m,
                     rtc.max_depth, rtc.samples_per_src, rtc.receivers_per_call, seed)


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


class _Worker:
    """A child ``python -m simulator.datagen.raytrace`` answering pickled (function name, args) on its stdin
    with pickled ("ok", result) / ("error", exception) on its stdout; kept alive for the scene cache."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "simulator.datagen.raytrace"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, cwd=str(Path(__file__).resolve().parents[2]))

    def call(self, name: str, *args):
        pickle.dump((name, args), self.proc.stdin)
        self.proc.stdin.flush()
        try:
            status, value = pickle.load(self.proc.stdout)
        except EOFError:
            raise RuntimeError(f"the ray-tracing worker died (exit code {self.proc.wait()})") from None
        if status == "error":
            raise value
        return value

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


_WORKER: _Worker | None = None


def run_in_worker(name: str, *args):
    """The module function ``name``(*args) in the ray-tracing worker process (started once)."""
    global _WORKER
    if _WORKER is None or _WORKER.proc.poll() is not None:
        _WORKER = _Worker()
        atexit.register(_WORKER.close)
    return _WORKER.call(name, *args)


def _serve():
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                                         # prints of the libraries go to stderr
    while True:
        try:
            name, args = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        try:
            reply = ("ok", globals()[name](*args))
        except Exception as exc:                          # noqa: BLE001 - handed to the caller
            reply = ("error", exc)
        pickle.dump(reply, out)
        out.flush()


def area_in_worker(rtc: RayTracedConfig, carrier_frequency_hz: float, rows: int, cols: int, seed: int, n: int,
                   frequencies_hz: np.ndarray, rng_seed: int):
    """draw_area in the worker: H [n, ant, sc], positions [n, 3], dropped counts."""
    return run_in_worker("_area", rtc, carrier_frequency_hz, rows, cols, seed, n, frequencies_hz, rng_seed)


def track_in_worker(rtc: RayTracedConfig, carrier_frequency_hz: float, rows: int, cols: int, seed: int,
                    start: int, stop: int, frequencies_hz: np.ndarray):
    """trace_track in the worker: H [k, ant, sc], positions [k, 3], distance_m [k]."""
    return run_in_worker("_track", rtc, carrier_frequency_hz, rows, cols, seed, start, stop, frequencies_hz)


def _area(rtc, fc, rows, cols, seed, n, freqs, rng_seed):
    return draw_area(tracer(rtc, fc, rows, cols, seed), rtc.area, n, freqs, np.random.default_rng(rng_seed))


def _track(rtc, fc, rows, cols, seed, start, stop, freqs):
    return trace_track(tracer(rtc, fc, rows, cols, seed), rtc.track, start, stop, freqs)


if __name__ == "__main__":
    _serve()
