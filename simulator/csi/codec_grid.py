"""Where a neural CSI codec's grid sits on the carrier and the gNB array, and the precoder the gNB
derives from a reconstruction.

A conv_csi codec compresses x [num_ant, num_sc, 2] (real, imag): the channel from every gNB
antenna to one UE antenna on ``num_sc`` subcarriers. Here those are ``num_sc`` subcarriers spread
evenly over the carrier, subcarrier floor((k + 1/2) N / num_sc) for k = 0 .. num_sc - 1 (N = 12 x
PRBs), the gNB antennas in the array's port order (``GnbConfig.num_antennas``), one matrix per UE
antenna. Each matrix is divided by its RMS entry, as the codec's training data are
(``models/csi_codec/data.py``); the scale is not reported, since neither the precoder nor the CQI
the UE computes needs it. The gNB precodes each subband with the dominant eigenvector of the
reconstructed samples that fall in it (``dominant_precoder``), so every subband must hold one.
"""
from __future__ import annotations

import numpy as np

from simulator.phy.precoding import layered_precoder, sgcs


def grid_misfit(num_ant: int, num_sc: int, num_gnb_ant: int, num_prbs: int, subband_prbs: int) -> str | None:
    """Why a codec grid of num_ant x num_sc does not fit the array and the carrier, or None."""
    if num_ant != num_gnb_ant:
        return f"the codec's grid has {num_ant} antennas, the gNB array {num_gnb_ant} ports"
    n = 12 * num_prbs
    if num_sc > n:
        return f"the codec's grid has {num_sc} subcarriers, the carrier {n} ({num_prbs} PRBs)"
    empty = sorted(set(range(-(-num_prbs // subband_prbs))) - set(_sample_sc(num_sc, n) // (12 * subband_prbs)))
    if empty:
        return (f"its {num_sc} subcarriers over {n} leave precoding subband(s) {empty} of "
                f"csi_rs.report.subband_prbs {subband_prbs} without a sample; use larger subbands")
    return None


def _sample_sc(num_sc: int, num_carrier_sc: int) -> np.ndarray:
    return ((np.arange(num_sc) + 0.5) * num_carrier_sc / num_sc).astype(np.int64)


class CodecGrid:
    """to_codec: h [ue_ant, gnb_ant, N] complex (the measured channel) -> x [ue_ant, gnb_ant, num_sc, 2]
    float32, unit mean power per UE antenna.
    precoder: x_hat [ue_ant, gnb_ant, num_sc, 2] (a reconstruction), rank -> w [num_subbands, gnb_ant]
    complex128, unit norm (rank 1) or [num_subbands, gnb_ant, rank], orthonormal columns."""

    def __init__(self, num_ant: int, num_sc: int, num_gnb_ant: int, num_prbs: int, subband_prbs: int):
        misfit = grid_misfit(num_ant, num_sc, num_gnb_ant, num_prbs, subband_prbs)
        if misfit is not None:
            raise ValueError(misfit)
        self.sample_sc = _sample_sc(num_sc, 12 * num_prbs)                       # [num_sc]
        self.subband_of_sample = self.sample_sc // (12 * subband_prbs)          # [num_sc]

    def to_codec(self, h: np.ndarray) -> np.ndarray:
        s = h[..., self.sample_sc].astype(np.complex64)                          # [ue, gnb, num_sc]
        rms = np.sqrt(np.mean(np.abs(s) ** 2, axis=(-2, -1), keepdims=True))
        s = s / np.where(rms > 0, rms, 1.0)
        return np.stack([s.real, s.imag], axis=-1).astype(np.float32)

    def precoder(self, x_hat: np.ndarray, rank: int = 1) -> np.ndarray:
        h_hat = x_hat[..., 0] + 1j * x_hat[..., 1]                               # [ue, gnb, num_sc]
        return layered_precoder(h_hat, self.subband_of_sample, rank)

    def sgcs(self, x: np.ndarray, x_hat: np.ndarray) -> np.ndarray:
        """x, x_hat [n, gnb_ant, num_sc, 2] samples (one UE antenna's matrix each) and their
        reconstructions -> [n, num_subbands] the SGCS of the precoder the gNB would derive from each
        reconstruction (``precoder``, rank 1) to the sample's own."""
        w = [self.precoder(np.asarray(a)[:, None]) for a in (x, x_hat)]          # [n, S, gnb] each
        return sgcs(w[0], w[1])
