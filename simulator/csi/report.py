"""A UE's CSI report at a CSI-RS occasion: the precoder the gNB will use and what it costs on the link.

``csi_rs.report.kind``:

- ``ideal``: the gNB gets the channel the UE measured (delayed and carried like any report; its
  bits beyond the CQI are not charged) and precodes each subband with its dominant eigenvector.
- ``type1``: 38.214 Type I single-panel PMI (codebookMode 1, rank 1: the PDSCH carries one
  layer), searched on one row per PRB (its 7th subcarrier) summed per subband; the report costs
  its 38.212 PMI/RI bits on top of the CQI's. N1 = ``gnb.antenna_cols``, N2 = ``gnb.antenna_rows``
  (Sionna's antenna order is then 38.214's port order).

With one gNB antenna there is nothing to precode and both kinds are the CQI alone. The CQI is
computed for the precoder the report implies, on the channel the UE measured.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.csi.type1 import WIDEBAND_CQI_BITS, codebook_config, precoder, report_bits, select_pmi
from simulator.phy.precoding import dominant_precoder
from simulator.schema import CsiReportConfig, GnbConfig


@dataclass(frozen=True)
class Precoder:
    """One stream's precoder per subband: w [num_subbands, gnb_ant] unit norm, subbands of
    ``subband_sc`` subcarriers (the last one shorter if the carrier ends first)."""
    w: np.ndarray
    subband_sc: int


@dataclass(frozen=True)
class CsiMeasurement:
    """What one report tells the gNB besides the CQI."""
    precoder: Precoder | None      # None: one gNB antenna, nothing to precode
    bits: int                      # report bits beyond the CQI's


class CsiReporter:
    """measure: the UE's channel, the CSI-RS slot, snr_db (as the UE measured it) -> CsiMeasurement, from
    the MIMO response h [ue_ant, gnb_ant, sc] of that slot."""

    def __init__(self, cfg: CsiReportConfig, gnb: GnbConfig, num_prbs: int):
        self.kind = cfg.kind
        self.subband_sc = 12 * cfg.subband_prbs
        self.num_gnb_ant = gnb.num_antennas
        self.subband_of_sc = np.arange(12 * num_prbs) // self.subband_sc                 # [sc]
        self.num_subbands = int(self.subband_of_sc[-1]) + 1
        self._rows = np.arange(num_prbs) * 12 + 6                                      # one subcarrier a PRB
        # type1: the i2 subband of each searched row (all 0: one wideband i2)
        self._subband_of_row = self.subband_of_sc[self._rows] * cfg.subband_pmi
        self.bits = 0
        if self.kind == "type1" and self.num_gnb_ant > 1:
            self.codebook = codebook_config(gnb.antenna_cols, gnb.antenna_rows, gnb.polarization == "dual")
            self.bits = report_bits(self.codebook, 1, 1, self.num_subbands, cfg.subband_pmi).total - WIDEBAND_CQI_BITS

    def measure(self, channel, slot: int, snr_db: float) -> CsiMeasurement:
        if self.num_gnb_ant == 1:
            return CsiMeasurement(None, 0)
        h = channel.cfr_slot(slot)                                                            # [ue, gnb, sc]
        if self.kind == "ideal":
            w = dominant_precoder(h, self.subband_of_sc)                                      # [S, gnb_ant]
        else:
            rows = np.moveaxis(h[:, :, self._rows], -1, 0)                                    # [R, ue, gnb]
            pmi, _ = select_pmi(self.codebook, rows, snr_db, 1, self._subband_of_row)
            w = precoder(self.codebook, pmi)[:, :, 0]                                         # [S or 1, gnb_ant]
            w = np.broadcast_to(w, (self.num_subbands, w.shape[1]))                           # wideband: every subband
        return CsiMeasurement(Precoder(w, self.subband_sc), self.bits)
