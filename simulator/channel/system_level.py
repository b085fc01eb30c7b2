"""38.901 UMi/UMa (Sionna's system-level models) as a small-scale fading source for one UE.

Sionna draws the link's large-scale parameters (LoS state, K-factor, delay and angle spreads) in
``set_topology`` and its clusters, rays and initial phases in the call; with pathloss and shadow
fading disabled the path gains carry the cluster powers (summing to one over the clusters) times
the antenna field patterns towards each ray: the gNB's 38.901 element gives up to 8 dBi, so the
mean power per antenna pair is the element gain towards the clusters (about 2 to 6 for a UE 50 m
from a 10 m high gNB), not one. ``SystemLevelPaths`` divides by that realisation's expected power,
computed from its path powers and ray angles (the average over the random ray phases), so the
power per antenna pair is one on average over the small-scale fading and not per sample.
"""
from __future__ import annotations

import numpy as np


class SystemLevelPaths:
    """Path gains of one downlink from one set_topology at t = 0, sampled a stretch at a time from one
    realisation (``continuous_38901``: the same values as one Sionna call over the whole run).

    model_name "umi" | "uma"; los True | False | None (drawn with 38.901's LoS probability); the arrays
    are Sionna ``PanelArray``s (orientations zero, the UE outdoor); positions and velocity [3] in metres
    and m/s in the global frame. Building it draws the realisation and evaluates samples
    0 .. first_samples - 1 (``first``).

    path_gains(start, stop) -> a [stop - start, ut_ant, bs_ant, paths] complex64, unit expected power per
    antenna pair averaged over the pairs; ``tau_s`` [paths] float64 seconds. The paths Sionna pads to
    its maximum cluster count (zero gain in every sample of ``first``) are dropped.
    """

    def __init__(self, model_name: str, los: bool | None, ut_array, bs_array, carrier_frequency_hz: float,
                 bs_position_m, ut_position_m, ut_velocity_mps, sampling_frequency_hz: float, first_samples: int):
        import tensorflow as tf
        from sionna.phy.channel.tr38901 import UMa, UMi

        from simulator.channel.continuous_38901 import ContinuousModel

        cls = UMi if model_name == "umi" else UMa
        # o2i_model sets the indoor penetration loss, which an outdoor UE without pathloss never sees
        model = cls(carrier_frequency_hz, "low", ut_array, bs_array, "downlink",
                    enable_pathloss=False, enable_shadow_fading=False)

        def loc(x):
            return tf.constant(np.reshape(np.asarray(x, np.float32), [1, 1, 3]))

        zeros = tf.zeros([1, 1, 3])
        model.set_topology(loc(ut_position_m), loc(bs_position_m), zeros, zeros, loc(ut_velocity_mps),
                           tf.constant([[False]]), los)
        model.return_rays = True
        self._model, self._fs = ContinuousModel(model), float(sampling_frequency_hz)
        a, tau, rays = self._model(0, first_samples, self._fs)
        a = self._layout(a)
        self._keep = np.flatnonzero(np.any(a != 0, axis=(0, 1, 2)))
        self._scale = np.float32(1.0 / np.sqrt(_expected_power(model, rays, ut_array, bs_array).mean()))
        self.tau_s = tf.reshape(tau, [-1]).numpy().astype(np.float64)[self._keep]
        self.first = self._scaled(a)

    @staticmethod
    def _layout(a) -> np.ndarray:
        # a: [1, 1, rx_ant, 1, tx_ant, paths, time] -> [time, rx_ant, tx_ant, paths]
        return np.transpose(a[0, 0, :, 0].numpy(), [3, 0, 1, 2])

    def _scaled(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a[..., self._keep] * self._scale)

    def path_gains(self, start: int, stop: int) -> np.ndarray:
        return self._scaled(self._layout(self._model(start, stop - start, self._fs)[0]))


def _expected_power(model, rays, ut_array, bs_array) -> np.ndarray:
    """[ut_ant, bs_ant] float64: sum over paths of E|a|^2 over the rays' random phases (38.901 eq. 7.5-22:
    sum_n P_n / M sum_m |F_rx^T Phi_nm F_tx|^2 with Phi's four phases independent, so the four polarisation
    terms add in power, the cross terms weighted by 1 / XPR; LoS: 1 / (K + 1) of that plus K / (K + 1) of the
    deterministic LoS ray's). Reads the LoS state, K-factor and LoS angles from the model (Sionna 1.2 keeps
    the scenario and the LSPs in ``_scenario`` and ``_lsp``, without a public accessor)."""
    def first(x):
        return np.asarray(x, np.float64)[0, 0, 0]

    powers, xpr = first(rays.powers), first(rays.xpr)                        # [clusters], [clusters, rays]
    ft = _fields(bs_array, first(rays.zod), first(rays.aod)) ** 2             # [bs_ant, clusters, rays, 2]
    fr = _fields(ut_array, first(rays.zoa), first(rays.aoa)) ** 2             # [ut_ant, clusters, rays, 2]
    co = np.einsum("rcm,tcm->rtcm", fr[..., 0], ft[..., 0]) + np.einsum("rcm,tcm->rtcm", fr[..., 1], ft[..., 1])
    cross = np.einsum("rcm,tcm->rtcm", fr[..., 0], ft[..., 1]) + np.einsum("rcm,tcm->rtcm", fr[..., 1], ft[..., 0])
    nlos = np.einsum("c,rtcm->rt", powers / xpr.shape[-1], co + cross / xpr)
    sc = model._scenario
    if not bool(first(sc.los)):
        return nlos
    k = float(first(model._lsp.k_factor))
    ft_los = _fields(bs_array, np.deg2rad(first(sc.los_zod)), np.deg2rad(first(sc.los_aod)))     # [bs_ant, 2]
    fr_los = _fields(ut_array, np.deg2rad(first(sc.los_zoa)), np.deg2rad(first(sc.los_aoa)))     # [ut_ant, 2]
    los = (fr_los[:, None, 0] * ft_los[None, :, 0] - fr_los[:, None, 1] * ft_los[None, :, 1]) ** 2   # Phi = diag(1, -1)
    return nlos / (k + 1) + los * k / (k + 1)


def _fields(array, zenith_rad: np.ndarray, azimuth_rad: np.ndarray) -> np.ndarray:
    """[num_ant, *angles.shape, 2] float64: each element's (F_theta, F_phi) towards the angles, from the
    array's own element patterns (zero orientation: the local frame is the global one), wrapped to
    zenith [0, pi] and azimuth (-pi, pi] as the patterns expect."""
    import tensorflow as tf

    theta = tf.constant(np.arccos(np.clip(np.cos(zenith_rad), -1.0, 1.0)), tf.float32)
    phi = tf.constant(np.angle(np.exp(1j * azimuth_rad)), tf.float32)

    def field(element):
        return np.stack([np.asarray(f, np.float64) for f in element.field(theta, phi)], axis=-1)

    out = np.repeat(field(array.ant_pol1)[None], array.num_ant, axis=0)
    if array.polarization == "dual":
        out[np.asarray(array.ant_ind_pol2)] = field(array.ant_pol2)
    return out
