"""``channel.model: ray_traced``: one UE's paths from a Sionna RT scene along its drive.

Anchors: the UE's paths are traced at the samples where it has travelled 0, s, 2 s, ... metres
(s = ``anchor_spacing_m``, rounded to whole samples; a UE standing still has one anchor), at its
position x_j and with its velocity there (``Mobility``), all in one solver call (chunks of
``receivers_per_call``, one seed) in the ray-tracing worker, at build time. Anchor j serves the
segment of samples from it to the next anchor; there path p keeps its gain a_p, its angles and its
delay tau_p, and its phase follows the UE:

    a_p(x) = a_p exp(-j 2 pi f_c tau_p) exp(-j 2 pi (|x - s_p| - c tau_p) / lambda),
    s_p = x_j + c tau_p u_p      (u_p: the path's arrival direction at x_j, from Paths.theta_r / phi_r)

with x the UE's position at the sample. s_p is the path's source seen from the UE (the gNB for the
line of sight, its image for specular reflections), so the phase turns at the path's Doppler shift
v . u_p / lambda at the anchor (``Paths.doppler``, what ``Paths.cir(num_time_steps=...)`` applies)
and keeps the wavefront's curvature after it. A phase that turned at the anchor's Doppler alone
would miss the next anchor's by about pi s^2 sin^2(theta) / (lambda r) (a path at range r and angle
theta to the drive: 1.4 rad for s = 1 m at 21 m and 3.5 GHz, 0.6 rad at 60 m), a jump at every
anchor; with the source's distance the line of sight and specular reflections (refraction through
thin walls nearly so) arrive at the next anchor with the phase it traces. What changes at an
anchor is what the scene changes there: paths appear or vanish (a blocked line of sight), the gains
and angles move on by a metre's worth. The carrier phase uses the absolute delay; the baseband
delays are fixed within a segment and counted from the anchor's first path (the UE's timing tracks
it): one Fourier kernel per segment.

Normalisation: ray tracing gives absolute path gains (pathloss and blockage included) while the event
loop's SNR comes from ``snr:``, so every gain is divided by one constant per UE: the root of the mean
over the drive's samples and antenna pairs of the path power sum_p |a_p|^2 (the mean of |H|^2 over
the band and the drive, up to the path cross terms that the turning phases average out). The channel
keeps the scene's own large-scale variation along the drive around that mean (it dims behind a
building), so ``snr.model: fixed | schedule`` sets the SNR at the drive's mean power; 38.901
pathloss on top would count the distance trend twice, and the schema refuses it. Each UE has its
own constant.

Memory: the anchors' paths, [anchors, ue_ant, gnb_ant, paths] complex128 (84 anchors, 32 ports,
14 paths: 0.6 MB), and the UE's position per sample (24 bytes); a slot's gains are formed when asked
for.
"""
from __future__ import annotations

import numpy as np

from models.config import FieldError
from simulator.channel.ray_tracer import TracedPaths
from simulator.channel.ray_tracing_config import RayTracedChannelConfig
from simulator.channel.rt_worker import run_in_worker
from simulator.schema import CarrierConfig, GnbConfig

SPEED_OF_LIGHT_MPS = 299_792_458.0


class RayTracedPaths:
    """A UE's path gains per sample from its anchors' paths (see the module docstring).

    gains: samples [n] int -> [n, num_ue_ant, num_gnb_ant, paths] complex128
    segment_of_sample [num_samples] int64 (the anchor serving each sample); tau_s [anchors, paths]
    float64 (delays from each anchor's first path; padding paths 0, with zero gain).
    """

    def __init__(self, traced: TracedPaths, position_m: np.ndarray, samples_per_anchor: int,
                 carrier_frequency_hz: float):
        """traced: the paths at the anchors (samples 0, samples_per_anchor, ...); position_m [num_samples, 3]:
        the UE's position at every sample."""
        anchor_m = position_m[::samples_per_anchor]
        valid = np.arange(traced.tau_s.shape[1])[None, :] < traced.num_paths[:, None]      # [anchors, paths]
        self._wavelength_m = SPEED_OF_LIGHT_MPS / carrier_frequency_hz
        self._length_m = traced.tau_s * SPEED_OF_LIGHT_MPS                                  # [anchors, paths]
        self._source_m = anchor_m[:, None, :] + self._length_m[..., None] * traced.arrival.transpose(0, 2, 1)
        self._a = traced.a.astype(np.complex128) * np.exp(-2j * np.pi * carrier_frequency_hz * traced.tau_s)[
            :, None, None, :]
        first_s = np.where(valid, traced.tau_s, np.inf).min(axis=1, keepdims=True)
        self.tau_s = np.where(valid, traced.tau_s - first_s, 0.0)
        self._position_m = position_m
        self.segment_of_sample = np.arange(len(position_m), dtype=np.int64) // samples_per_anchor
        segment_samples = np.bincount(self.segment_of_sample, minlength=len(anchor_m))
        power = (np.abs(self._a) ** 2).sum(axis=-1).mean(axis=(1, 2))                      # [anchors]
        self._a /= np.sqrt(np.average(power, weights=segment_samples))

    def gains(self, samples: np.ndarray) -> np.ndarray:
        seg = self.segment_of_sample[samples]
        d = self._position_m[samples][:, None, :] - self._source_m[seg]                      # [n, paths, 3]
        extra_m = np.sqrt((d * d).sum(axis=-1)) - self._length_m[seg]
        return self._a[seg] * np.exp(-2j * np.pi * extra_m / self._wavelength_m)[:, None, None, :]


def ray_traced_paths(cfg: RayTracedChannelConfig, carrier: CarrierConfig, gnb: GnbConfig, num_ue_ant: int,
                     mobility, num_samples: int, seed: int, ue_field: str) -> RayTracedPaths:
    """Trace the anchors of one UE (``mobility``: ``Mobility``; sample k at k slots of travel) in the
    worker and build its paths. A UE position without any path is a FieldError on ``ue_field``
    (``ues.N.mobility``) naming the position."""
    fc_hz = carrier.carrier_frequency_ghz * 1e9
    slot_s = carrier.slot_us * 1e-6
    step_m = mobility.speed_mps * slot_s
    stride = max(1, int(round(cfg.anchor_spacing_m / step_m))) if step_m > 0 else num_samples
    position_m = mobility.position_m(np.arange(num_samples) * slot_s)               # [samples, 3]
    t_s = np.arange(0, num_samples, stride) * slot_s                                  # [anchors]
    anchor_m = position_m[::stride]
    array = {"spacing_wavelengths": gnb.element_spacing_wavelengths, "dual_polarized": gnb.polarization == "dual",
             "num_ue_ant": num_ue_ant}
    traced = run_in_worker("simulator.channel.ray_tracer:trace_paths", cfg, fc_hz, gnb.antenna_rows,
                           gnb.antenna_cols, tuple(gnb.position_m), int(seed), array, anchor_m,
                           mobility.velocity_mps(t_s))
    none = np.flatnonzero(traced.num_paths == 0)
    if len(none):
        j = none[0]
        raise FieldError(ue_field, f"no path reaches the UE at position_m {anchor_m[j].round(2).tolist()} "
                                   f"(t = {t_s[j]:.3f} s) in scene {cfg.scene} from the gNB at "
                                   f"{list(gnb.position_m)} within max_depth {cfg.max_depth}; {len(none)} of the "
                                   f"{len(t_s)} positions traced every {cfg.anchor_spacing_m} m have none. Choose a "
                                   f"drive the gNB covers")
    return RayTracedPaths(traced, position_m, stride, fc_hz)
