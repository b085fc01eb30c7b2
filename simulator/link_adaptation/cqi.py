"""CQI: chosen by the UE from its measured SINR (BLER <= 10 % rule), read back by the gNB.

38.214 Sec. 5.2.2.1: the UE reports the highest CQI whose (modulation, code rate) it could
receive with a transport BLER <= 0.1. The BLER comes from the same Sionna tables the PHY
abstraction uses: the highest MCS meeting the target at the EESM SINR is found, and the CQI
is the highest one whose spectral efficiency does not exceed that MCS's.
"""
from __future__ import annotations

import numpy as np

from simulator.link_adaptation.tables import BlerTable, cqi_table

CQI_BLER_TARGET = 0.1


class CqiMapper:
    """Maps per-RE SINR -> CQI (UE side) and CQI -> SINR estimate / MCS (gNB side)."""

    def __init__(self, table: BlerTable, cqi_table_index: int):
        self.table = table
        cq = cqi_table(cqi_table_index)
        self.cqi_se = cq[:, 0] * cq[:, 1]                          # [15] SE of CQI 1..15
        se = np.where(table.available, table.se, np.inf)
        # MCS the gNB maps each CQI (0..15) to: highest available MCS with SE <= SE(CQI)
        self.mcs_of_cqi = np.empty(16, dtype=np.int64)
        self.mcs_of_cqi[0] = table.lowest_mcs
        for c in range(1, 16):
            ok = np.flatnonzero(se <= self.cqi_se[c - 1] + 1e-9)
            self.mcs_of_cqi[c] = ok[-1] if ok.size else table.lowest_mcs
        # SINR (dB) at which the CQI's MCS reaches 10 % TBLER: the gNB's estimate for OLLA
        self.sinr_db_of_cqi = np.array([table.threshold_db(int(m), CQI_BLER_TARGET) for m in self.mcs_of_cqi])
        self.sinr_db_of_cqi[0] = table.snr_min_db

    def select(self, sinr_re: np.ndarray) -> tuple[int, float]:
        """UE side: per-RE linear SINR [num_re] -> (CQI 0..15, effective SINR dB at the chosen MCS)."""
        eff_db = self.table.eesm_db_all(sinr_re)                    # [num_mcs]
        mcs = self.table.best_mcs(eff_db, CQI_BLER_TARGET)
        if self.table.tbler_at(mcs, eff_db[mcs]) > CQI_BLER_TARGET:
            return 0, float(eff_db[mcs])
        ok = np.flatnonzero(self.cqi_se <= self.table.se[mcs] + 1e-9)
        return (int(ok[-1]) + 1 if ok.size else 0), float(eff_db[mcs])
