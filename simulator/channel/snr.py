"""Average per-resource-element SNR per slot: fixed, a piecewise-linear schedule, or 38.901 pathloss."""
from __future__ import annotations

import numpy as np

from simulator.schema import CarrierConfig, FixedSnr, GnbConfig, PathlossSnr, ScheduleSnr, SnrConfig

BOLTZMANN_DBM_PER_HZ = -174.0


def pathloss_38901_db(scenario: str, los: bool, d_2d_m, h_bs_m: float, h_ut_m, fc_ghz: float) -> np.ndarray:
    """38.901 Table 7.4.1-1 basic pathloss (dB) for UMa/UMi street canyon, LOS or NLOS.

    Written out because Sionna exposes these formulas only inside its system-level
    scenario objects (which also draw LSPs and need a full topology); the formulas are
    short and the test checks them against Sionna's ``UMiScenario``/``UMaScenario`` (which drop
    the antenna height difference from d_3d; we keep it, as 38.901 does).
    Uses the environment height h_E = 1 m (UMa with d < 18 m or UMi).
    """
    d_2d = np.maximum(np.asarray(d_2d_m, dtype=np.float64), 10.0)
    h_ut = np.asarray(h_ut_m, dtype=np.float64)
    d_3d = np.sqrt(d_2d ** 2 + (h_bs_m - h_ut) ** 2)
    c = 3.0e8
    h_bs_eff, h_ut_eff = h_bs_m - 1.0, h_ut - 1.0
    d_bp = 4.0 * h_bs_eff * h_ut_eff * fc_ghz * 1e9 / c
    if scenario == "uma":
        pl1 = 28.0 + 22.0 * np.log10(d_3d) + 20.0 * np.log10(fc_ghz)
        pl2 = 28.0 + 40.0 * np.log10(d_3d) + 20.0 * np.log10(fc_ghz) - 9.0 * np.log10(d_bp ** 2 + (h_bs_m - h_ut) ** 2)
        pl_los = np.where(d_2d <= d_bp, pl1, pl2)
        if los:
            return pl_los
        pl_nlos = 13.54 + 39.08 * np.log10(d_3d) + 20.0 * np.log10(fc_ghz) - 0.6 * (h_ut - 1.5)
        return np.maximum(pl_los, pl_nlos)
    pl1 = 32.4 + 21.0 * np.log10(d_3d) + 20.0 * np.log10(fc_ghz)
    pl2 = 32.4 + 40.0 * np.log10(d_3d) + 20.0 * np.log10(fc_ghz) - 9.5 * np.log10(d_bp ** 2 + (h_bs_m - h_ut) ** 2)
    pl_los = np.where(d_2d <= d_bp, pl1, pl2)
    if los:
        return pl_los
    pl_nlos = 35.3 * np.log10(d_3d) + 22.4 + 21.3 * np.log10(fc_ghz) - 0.3 * (h_ut - 1.5)
    return np.maximum(pl_los, pl_nlos)


class SnrModel:
    """snr_db(t_s [n], position_m [n, 3]) -> [n] average per-RE SNR in dB (pathloss: from the gNB's
    position and transmit power, ``gnb``)."""

    def __init__(self, cfg: SnrConfig, carrier: CarrierConfig, gnb: GnbConfig | None = None):
        self.cfg = cfg
        self.carrier = carrier
        self.gnb = gnb or GnbConfig()

    def snr_db(self, t_s, position_m) -> np.ndarray:
        t_s = np.asarray(t_s, dtype=np.float64)
        cfg = self.cfg
        if isinstance(cfg, FixedSnr):
            return np.full(t_s.shape, cfg.snr_db)
        if isinstance(cfg, ScheduleSnr):
            pts = np.asarray(cfg.points, dtype=np.float64)
            return np.interp(t_s, pts[:, 0], pts[:, 1])
        if isinstance(cfg, PathlossSnr):
            pos = np.asarray(position_m, dtype=np.float64)
            gnb = np.asarray(self.gnb.position_m)
            d_2d = np.linalg.norm(pos[..., :2] - gnb[:2], axis=-1)
            pl = pathloss_38901_db(cfg.scenario, cfg.los, d_2d, gnb[2], pos[..., 2],
                                   self.carrier.carrier_frequency_ghz)
            bw_hz = self.carrier.num_subcarriers * self.carrier.subcarrier_spacing_khz * 1e3
            noise_dbm = BOLTZMANN_DBM_PER_HZ + 10.0 * np.log10(bw_hz) + cfg.noise_figure_db
            return self.gnb.tx_power_dbm - pl - noise_dbm
        raise TypeError(f"unknown snr config {cfg!r}")  # pragma: no cover
