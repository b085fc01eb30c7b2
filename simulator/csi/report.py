"""A UE's CSI report at a CSI-RS occasion: the precoder the gNB will use and what it costs on the link.

``csi_rs.report.kind``:

- ``ideal``: the gNB gets the channel the UE measured (delayed and carried like any report; its
  bits beyond the CQI are not charged) and precodes each subband with its dominant eigenvector.
- ``type1``: 38.214 Type I single-panel PMI (codebookMode 1), searched on one row per PRB (its
  7th subcarrier) summed per subband; the report costs its 38.212 PMI/RI bits on top of the CQI's. N1 = ``gnb.antenna_cols``, N2 = ``gnb.antenna_rows``
  (Sionna's antenna order is then 38.214's port order).
- ``etype2``: 38.214 Rel-16 enhanced Type II PMI (``simulator.csi.etype2``) at
  ``param_combination``, searched on each subband's covariance (from the path domain); the report
  costs its 38.212 bits (Part 1 and Part 2) on top of the CQI's.

- ``neural``: ``models.csi_codec`` compresses the measured channel on its grid
  (``simulator/csi/codec_grid.py``); the gNB decodes the bytes and precodes each subband with the
  dominant eigenvector of its reconstruction. Measured by the UE's ``CsiFeedback``
  (``simulator/processes/csi_feedback.py``), which holds the codec.

``max_rank`` 2 (two UE antennas): the UE reports the rank (1 or 2 layers) with the most mutual
information at the SNR it measured, sum over REs and layers of log2(1 + post-LMMSE SINR) with the
power split over the layers: type1 searches both ranks' codebooks (``select_ri``), ideal and neural
compare the top-1 and top-2 eigen-precoders (of the measured channel; of the expected
reconstruction, whose RI costs 1 bit).

With one gNB antenna there is nothing to precode and ideal and type1 are the CQI alone. The CQI is
computed for the precoder the gNB will use, on the channel the UE measured: the reported PMI's
codeword, the measured channel's eigenvectors (ideal), or, for neural, those of the reconstruction
the UE expects the gNB to make (its copy of the decoder side the report was encoded for, which
gives the gNB's reconstruction bit for bit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.csi import etype2
from simulator.csi.type1 import WIDEBAND_CQI_BITS, codebook_config, precoder, report_bits, select_ri
from simulator.phy.precoding import (eigen_gain, eigen_precoder_of_rows, layer_sinr, layered_precoder, precoded_gain,
                                     precoder_of_sc, sgcs)
from simulator.schema import CsiReportConfig, GnbConfig


@dataclass(frozen=True)
class Precoder:
    """The precoder per subband: w [num_subbands, gnb_ant] unit norm (one layer) or
    [num_subbands, gnb_ant, 2] orthonormal columns (two layers, the power split between them),
    subbands of ``subband_sc`` subcarriers (the last one shorter if the carrier ends first)."""
    w: np.ndarray
    subband_sc: int

    @property
    def layers(self) -> int:
        return 1 if self.w.ndim == 2 else self.w.shape[-1]


@dataclass(frozen=True)
class CsiMeasurement:
    """What one report tells the gNB besides the CQI, and what the UE measured."""
    precoder: Precoder | None      # the one the CQI is computed for (None: one gNB antenna, nothing to precode)
    bits: int                      # report bits beyond the CQI's (a neural report's are its ``csi``'s)
    csi: object | None = None      # neural: the codec's report (bytes the gNB decodes)
    h: np.ndarray | None = None    # [ue_ant, gnb_ant, sc] the measured channel (for the log's precoder quality)
    w_ideal: np.ndarray | None = None   # its per-subband eigenvectors, shaped like ``precoder.w``, if computed
    # instead of h for a one-antenna UE: [S, r, gnb_ant] rows whose Gram is each subband's covariance
    # (``FadingChannel.subband_rows``)
    rows: np.ndarray | None = None


def precoder_quality(m: CsiMeasurement) -> tuple[float, float, float]:
    """(SGCS mean, SGCS min, loss in dB) of the measurement's precoder on the channel it was measured on:
    the mean and the smallest over subbands (and layers) of |v^H w|^2 (v: the subband's dominant
    eigenvector of the measured channel, the l-th for layer l; with one UE antenna and one subcarrier
    per subband, the closed form |h^H w|^2 / ||h||^2), and 10 log10(sum over REs of lambda_max(H^H H) /
    sum of ||H w||^2), the loss against per-RE eigen-beamforming (one layer; NaN for two). All NaN with
    one gNB antenna.

    From ``m.rows`` when the measurement has no h (a one-antenna UE, one layer): per RE lambda_max is
    ||h||^2, so the sums are ||rows_s||_F^2 and ||rows_s w_s||^2 over the subbands."""
    if m.precoder is None:
        return math.nan, math.nan, math.nan
    layers = m.precoder.layers
    if m.h is None:
        w_ideal = m.w_ideal if m.w_ideal is not None else eigen_precoder_of_rows(m.rows, 1)[..., 0]
        got = np.einsum("srg,sg->sr", m.rows, m.precoder.w)                        # [S, r]
        loss = 10.0 * np.log10(np.vdot(m.rows, m.rows).real / np.vdot(got, got).real)
        sg = sgcs(w_ideal, m.precoder.w)
        return float(np.mean(sg)), float(np.min(sg)), float(loss)
    subband_of_sc = np.arange(m.h.shape[-1]) // m.precoder.subband_sc
    w_ideal = m.w_ideal if m.w_ideal is not None else layered_precoder(m.h, subband_of_sc, layers)
    if layers > 1:
        sg = np.abs(np.sum(w_ideal.conj() * m.precoder.w, axis=-2)) ** 2
        return float(np.mean(sg)), float(np.min(sg)), math.nan
    sg = sgcs(w_ideal, m.precoder.w)
    got = precoded_gain(m.h, precoder_of_sc(m.precoder.w.astype(m.h.dtype), subband_of_sc)).sum()
    return float(np.mean(sg)), float(np.min(sg)), float(10.0 * np.log10(eigen_gain(m.h).sum() / got))


def choose_rank(h: np.ndarray, w2: np.ndarray, subband_of_sc: np.ndarray, snr_db: float) -> np.ndarray:
    """Of the top-1 and top-2 eigen-precoders w2 [S, gnb_ant, 2], the one (in ``Precoder.w``'s layout)
    that carries the most mutual information on h [ue_ant, gnb_ant, sc] at snr_db: sum over REs and
    layers of log2(1 + post-LMMSE SINR) (ties: one layer)."""
    best, best_mi = w2[..., 0], -np.inf
    for w in (w2[..., :1], w2):
        g = np.einsum("ugs,sgl->uls", h, w[subband_of_sc])                 # [ue, layers, sc]
        mi = float(np.log2(1.0 + layer_sinr(g, snr_db)).sum())
        if mi > best_mi + 1e-9:
            best, best_mi = (w[..., 0] if w.shape[-1] == 1 else w), mi
    return best


class CsiReporter:
    """measure: the UE's channel, the CSI-RS slot, snr_db (as the UE measured it), distance_m (travelled;
    not used here) -> CsiMeasurement, from the MIMO response h [ue_ant, gnb_ant, sc] of that slot.
    (``neural`` reports are measured by the UE's ``CsiFeedback``, which holds its codec.)"""

    def __init__(self, cfg: CsiReportConfig, gnb: GnbConfig, num_prbs: int):
        self.kind = cfg.kind
        self.subband_sc = 12 * cfg.subband_prbs
        self.num_gnb_ant = gnb.num_antennas
        self.subband_of_sc = np.arange(12 * num_prbs) // self.subband_sc                 # [sc]
        self.num_subbands = int(self.subband_of_sc[-1]) + 1
        self._rows = np.arange(num_prbs) * 12 + 6                                      # one subcarrier a PRB
        # type1: the i2 subband of each searched row (all 0: one wideband i2)
        self._subband_of_row = self.subband_of_sc[self._rows] * cfg.subband_pmi
        self.max_rank = cfg.max_rank
        self.bits = {1: 0, 2: 0}                                                       # per rank
        if self.kind in ("type1", "etype2") and self.num_gnb_ant > 1:
            self.codebook = codebook_config(gnb.antenna_cols, gnb.antenna_rows, gnb.polarization == "dual")
        if self.kind == "type1" and self.num_gnb_ant > 1:
            self.bits = {r: report_bits(self.codebook, r, self.max_rank, self.num_subbands, cfg.subband_pmi).total
                         - WIDEBAND_CQI_BITS for r in range(1, self.max_rank + 1)}
        if self.kind == "etype2" and self.num_gnb_ant > 1:
            self.etype2_cfg = etype2.etype2_config(self.codebook, cfg.param_combination, self.num_subbands)

    def measure(self, channel, slot: int, snr_db: float, distance_m: float = 0.0) -> CsiMeasurement:
        if self.num_gnb_ant == 1:
            return CsiMeasurement(None, 0)
        if self.kind == "ideal":
            # the eigenvectors from the path domain: an r x r problem per subband (FadingChannel.subband_rows);
            # the full response only where the rank choice or a UE's several antennas need it
            rows = channel.subband_rows(slot, self.subband_sc)                               # [S, r, gnb]
            w = eigen_precoder_of_rows(rows, self.max_rank)                                   # [S, gnb, rank]
            if self.max_rank == 1 and channel.num_ue_ant == 1:
                return CsiMeasurement(Precoder(w[..., 0], self.subband_sc), 0, w_ideal=w[..., 0], rows=rows)
            h = channel.cfr_slot(slot)                                                        # [ue, gnb, sc]
            w = w[..., 0] if self.max_rank == 1 else choose_rank(h, w, self.subband_of_sc, snr_db)
            return CsiMeasurement(Precoder(w, self.subband_sc), 0, h=h, w_ideal=w)
        if self.kind == "etype2":
            return self._measure_etype2(channel, slot, snr_db)
        h = channel.cfr_slot(slot)                                                            # [ue, gnb, sc]
        rows = np.moveaxis(h[:, :, self._rows], -1, 0)                                        # [R, ue, gnb]
        pmi, _ = select_ri(self.codebook, rows, snr_db, self.max_rank, self._subband_of_row)
        w = precoder(self.codebook, pmi)                                                      # [S or 1, gnb_ant, rank]
        w = np.broadcast_to(w, (self.num_subbands, *w.shape[1:]))                             # wideband: every subband
        w = w[..., 0] if pmi.rank == 1 else w
        return CsiMeasurement(Precoder(w, self.subband_sc), self.bits[pmi.rank], h=h)

    def _measure_etype2(self, channel, slot: int, snr_db: float) -> CsiMeasurement:
        """eType II: the PMI searched on the subband covariances from the path domain
        (``FadingChannel.subband_rows``); with max_rank 2 the rank of the most mutual information on
        the measured channel (``choose_rank``: the rank-2 PMI's first layer is the rank-1 PMI's)."""
        rows = channel.subband_rows(slot, self.subband_sc)                                   # [S, r, gnb]
        pmi = etype2.select_pmi(self.etype2_cfg, rows, self.max_rank)
        w = etype2.precoder(self.etype2_cfg, pmi)                                                 # [S, gnb, rank]
        if self.max_rank == 1 and channel.num_ue_ant == 1:
            m = CsiMeasurement(Precoder(w[..., 0], self.subband_sc), 0, rows=rows)
        else:
            h = channel.cfr_slot(slot)
            w = w[..., 0] if self.max_rank == 1 else choose_rank(h, w, self.subband_of_sc, snr_db)
            m = CsiMeasurement(Precoder(w, self.subband_sc), 0, h=h)
        rank = m.precoder.layers
        if rank < pmi.rank:
            pmi = etype2.select_pmi(self.etype2_cfg, rows, rank)
        bits = etype2.report_bits(self.etype2_cfg, pmi, self.max_rank).total - WIDEBAND_CQI_BITS
        return CsiMeasurement(m.precoder, bits, h=m.h, rows=m.rows)
