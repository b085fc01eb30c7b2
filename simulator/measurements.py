"""What a UE can estimate from its measured channel: SNR, capacity, delay spread, Doppler.

Inputs are the measured channel frequency response ``h`` [num_ue_ant, num_subcarriers]
(unit average power) and the average per-RE SNR. These feed the BLER predictor's features;
they are estimated from the channel, never copied from the scenario.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
from scipy.special import j0

J0_FIRST_ZERO = 2.404825557695773


def wideband_snr_db(h: np.ndarray, snr_db: float) -> float:
    """Mean post-combining SNR over subcarriers, in dB: 10 log10(mean_k snr * sum_rx |h_k|^2)."""
    gain = np.sum(np.abs(h) ** 2, axis=0)
    return float(snr_db + 10 * np.log10(max(gain.mean(), 1e-30)))


def capacity_bps_hz(h: np.ndarray, snr_db: float) -> float:
    """Rank-1 (one stream, MRC) capacity averaged over subcarriers, bit/s/Hz."""
    gain = np.sum(np.abs(h) ** 2, axis=0)
    return float(np.mean(np.log2(1.0 + gain * 10 ** (snr_db / 10))))


def rms_delay_spread_ns(h: np.ndarray, subcarrier_spacing_hz: float) -> float:
    """RMS delay spread of the power-delay profile |IFFT_k(h)|^2 summed over antennas, in ns.

    Delays are resolved in steps of 1 / (num_subcarriers * spacing); taps beyond half the
    IFFT span are treated as negative-delay leakage and folded out.
    """
    n = h.shape[-1]
    pdp = np.sum(np.abs(np.fft.ifft(h, axis=-1)) ** 2, axis=0)          # [n]
    tau_s = np.arange(n) / (n * subcarrier_spacing_hz)
    keep = np.arange(n) < n // 2
    p, t = pdp[keep], tau_s[keep]
    mean = np.sum(p * t) / np.sum(p)
    return float(np.sqrt(max(np.sum(p * t * t) / np.sum(p) - mean * mean, 0.0)) * 1e9)


def doppler_hz(h0: np.ndarray, h1: np.ndarray, dt_s: float) -> float:
    """Maximum Doppler from two channel measurements ``dt_s`` apart.

    The normalised correlation rho = |<h0, h1>| / (|h0| |h1|) over subcarriers and antennas
    estimates Clarke's J0(2 pi f_d dt); f_d is its inverse on [0, first zero of J0).
    """
    num = np.abs(np.vdot(h0, h1))
    den = np.sqrt(np.vdot(h0, h0).real * np.vdot(h1, h1).real)
    rho = float(np.clip(num / max(den, 1e-30), 0.0, 1.0))
    if rho >= 1.0 - 1e-12:
        return 0.0
    if rho <= 0.0:
        return J0_FIRST_ZERO / (2 * np.pi * dt_s)
    x = brentq(lambda v: j0(v) - rho, 0.0, J0_FIRST_ZERO)
    return float(x / (2 * np.pi * dt_s))
