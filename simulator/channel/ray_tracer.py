"""A Sionna RT 1.2.2 scene with the BS in place (mitsuba 3.8 / drjit 1.3 on the CPU through LLVM),
traced for UEs at given positions: the frequency response (the CSI datasets) or the paths
themselves (the event loop's ray-traced channel).

The BS is a Transmitter with a ``PlanarArray`` (rows x cols at the gNB's element spacing, "tr38901"
element pattern, vertical or cross (+-45 degree) polarisation), the UEs Receivers with a row of
``num_ue_ant`` "iso" V-polarised elements at half a wavelength. The antenna index is the
``PlanarArray`` order (row index fastest, then the second polarisation), which is Sionna PHY's
``PanelArray`` order used by the CDL/UMi sources and ``GnbConfig.num_antennas``. Paths are traced with
``synthetic_array=True``: one path set per UE, the array applied as phase shifts.

The solver's cost grows with samples_per_src x receivers per call (every ray bounce is tested
against every receiver), and more than linearly past ~100 receivers per call, so receivers are
traced in chunks of ``receivers_per_call``.

drjit needs a libLLVM: it looks for /usr/lib/x86_64-linux-gnu/libLLVM*.so.* (Debian: package
libllvm15 or later) or the path in ``DRJIT_LIBLLVM_PATH``. Everything here runs in the ray-tracing
worker process (``simulator.channel.rt_worker``), never next to TensorFlow.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from simulator.channel.ray_tracing_config import RayTracingConfig


@dataclass(frozen=True)
class TracedPaths:
    """The paths of n UE positions, padded with zero-gain paths to a common count P (paths last)."""
    a: np.ndarray            # [n, num_ue_ant, num_bs_ant, P] complex64: passband coefficients (no delay phase)
    tau_s: np.ndarray        # [n, P] float64: absolute delays
    arrival: np.ndarray      # [n, 3, P] float64: unit vectors from the UE towards where each path arrives from
    doppler_hz: np.ndarray   # [n, P] float64: the UE's velocity against each arrival direction over lambda
    num_paths: np.ndarray    # [n] int64: the valid paths (the first num_paths of each row)


class RayTracer:
    """One bundled scene with the BS (a rows x cols array at ``bs_position_m`` [3]) in place.

    cfr: positions [n, 3] float (metres), frequencies [sc] (Hz, baseband) -> H [n, num_ant, num_sc]
        complex128 (one UE antenna; first path at delay 0; zero rows: no path)
    paths: positions [n, 3], velocities [n, 3] (m/s) -> TracedPaths
    """

    def __init__(self, cfg: RayTracingConfig, carrier_frequency_hz: float, rows: int, cols: int, bs_position_m,
                 seed: int = 0, *, spacing_wavelengths: float = 0.5, dual_polarized: bool = False,
                 num_ue_ant: int = 1):
        import sionna.rt as rt

        self.scene = rt.load_scene(getattr(rt.scene, cfg.scene), merge_shapes=True)
        self.scene.frequency = carrier_frequency_hz
        self.scene.tx_array = rt.PlanarArray(num_rows=rows, num_cols=cols, vertical_spacing=spacing_wavelengths,
                                             horizontal_spacing=spacing_wavelengths, pattern="tr38901",
                                             polarization="cross" if dual_polarized else "V")
        self.scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=num_ue_ant, pattern="iso", polarization="V")
        kw = {"look_at": [float(v) for v in cfg.bs_look_at_m]} if cfg.bs_look_at_m is not None else {}
        self.scene.add(rt.Transmitter("bs", position=[float(v) for v in bs_position_m], **kw))
        self.solver = rt.PathSolver()
        self.max_depth, self.samples_per_src = cfg.max_depth, cfg.samples_per_src
        self.receivers_per_call, self.seed = cfg.receivers_per_call, int(seed)
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
        p, k = np.asarray(positions, np.float64).reshape(-1, 3), self.receivers_per_call
        out = [self._cfr(p[i:i + k], frequencies_hz) for i in range(0, len(p), k)]
        if not out:
            return np.zeros((0, self.scene.tx_array.num_ant, len(frequencies_hz)), np.complex128)
        return np.concatenate(out)

    def paths(self, positions: np.ndarray, velocities_mps: np.ndarray) -> TracedPaths:
        """The paths reaching UEs at ``positions`` [n, 3] moving at ``velocities_mps`` [n, 3]; each UE's
        sorted by delay (a canonical order, whatever order the solver's threads found them in) and
        padded with zero-gain paths to the most any UE has."""
        p, k = np.asarray(positions, np.float64).reshape(-1, 3), self.receivers_per_call
        v = np.asarray(velocities_mps, np.float64).reshape(-1, 3)
        parts = [self._paths(p[i:i + k], v[i:i + k]) for i in range(0, len(p), k)]
        width = max(part.num_paths.max(initial=0) for part in parts)

        def stack(name):
            xs = [getattr(part, name) for part in parts]
            return np.concatenate([np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, width - x.shape[-1])]) for x in xs])

        return TracedPaths(*(stack(name) for name in ("a", "tau_s", "arrival", "doppler_hz")),
                           np.concatenate([part.num_paths for part in parts]))

    def _solve(self, positions: np.ndarray, velocities_mps: np.ndarray | None = None):
        for name in list(self.scene.receivers):
            self.scene.remove(name)
        for i, q in enumerate(positions):
            kw = {"velocity": [float(x) for x in velocities_mps[i]]} if velocities_mps is not None else {}
            self.scene.add(self._rt.Receiver(f"ue{i}", position=[float(x) for x in q], **kw))
        return self.solver(self.scene, max_depth=self.max_depth, samples_per_src=self.samples_per_src,
                           synthetic_array=True, seed=self.seed)

    def _cfr(self, p: np.ndarray, frequencies_hz: np.ndarray) -> np.ndarray:
        paths = self._solve(p)
        h = paths.cfr(frequencies=np.asarray(frequencies_hz, np.float64), normalize=False, out_type="numpy")
        # [num_rx, num_rx_ant=1, num_tx=1, num_tx_ant, num_time_steps=1, num_sc] -> [num_rx, ant, sc]
        return np.asarray(h, np.complex64)[:, 0, 0, :, 0, :].astype(np.complex128)

    def _paths(self, p: np.ndarray, v: np.ndarray) -> TracedPaths:
        paths = self._solve(p, v)
        re, im = paths.a
        a = (np.asarray(re.numpy()) + 1j * np.asarray(im.numpy())).astype(np.complex64)[:, :, 0]   # [n, rx, tx, P]

        def per_path(x):                                                          # [num_rx, num_tx=1, P] -> [n, P]
            return np.asarray(x.numpy(), np.float64)[:, 0]

        valid = np.asarray(paths.valid.numpy(), bool)[:, 0]
        tau, doppler, theta, phi = (per_path(x) for x in (paths.tau, paths.doppler, paths.theta_r, paths.phi_r))
        arrival = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)
        count = valid.sum(axis=-1).astype(np.int64)
        order = np.lexsort((doppler, np.where(valid, tau, np.inf)), axis=-1)[:, :count.max(initial=0)]
        keep = np.arange(order.shape[1])[None, :] < count[:, None]               # valid paths first, by delay

        def sort(x):
            mid = (1,) * (x.ndim - 2)
            y = np.take_along_axis(x, order.reshape(len(x), *mid, -1), axis=-1)
            return np.where(keep.reshape(len(x), *mid, -1), y, 0)

        return TracedPaths(sort(a), sort(tau), sort(arrival), sort(doppler), count)


@functools.lru_cache(maxsize=2)
def ray_tracer(cfg: RayTracingConfig, carrier_frequency_hz: float, rows: int, cols: int, bs_position_m: tuple,
               seed: int, **array) -> RayTracer:
    """A cached RayTracer (loading a scene takes ~1-2 s; shards of one dataset and the UEs of one
    scenario share it); ``array``: RayTracer's keywords."""
    return RayTracer(cfg, carrier_frequency_hz, rows, cols, bs_position_m, seed, **array)


def trace_paths(cfg: RayTracingConfig, carrier_frequency_hz: float, rows: int, cols: int, bs_position_m: tuple,
                seed: int, array: dict, positions: np.ndarray, velocities_mps: np.ndarray):
    """``RayTracer.paths`` of the cached tracer (``array``: its keywords); call it through
    ``rt_worker.run_in_worker("simulator.channel.ray_tracer:trace_paths", ...)``."""
    return ray_tracer(cfg, carrier_frequency_hz, rows, cols, bs_position_m, seed, **array).paths(positions,
                                                                                                 velocities_mps)


def trace_cfr(cfg: RayTracingConfig, carrier_frequency_hz: float, rows: int, cols: int, bs_position_m: tuple,
              seed: int, array: dict, positions: np.ndarray, frequencies_hz: np.ndarray) -> np.ndarray:
    """``RayTracer.cfr`` of the cached tracer (UE antenna 0); call it through ``rt_worker.run_in_worker``."""
    return ray_tracer(cfg, carrier_frequency_hz, rows, cols, bs_position_m, seed, **array).cfr(positions,
                                                                                               frequencies_hz)
