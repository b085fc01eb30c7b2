"""Outer-loop link adaptation with the semantics of Sionna SYS ``OuterLoopLinkAdaptation``.

offset -= step_down on ACK, += step_up on NACK, step_down = step_up * target / (1 - target),
clamped to [offset_min, offset_max]; MCS = highest with TBLER(sinr_eff_db - offset) <= target
(lowest available if none). Sionna's block costs ~25 ms per eager call; this scalar version
costs microseconds; ``tests/simulator/link_adaptation/test_tables.py`` checks it step by step against Sionna's.
"""
from __future__ import annotations

import numpy as np

from simulator.link_adaptation.tables import BlerTable


class Olla:
    """One offset per UE; the MCS is chosen on the table of the layers the transport block will have
    (``table`` for one layer, ``table2`` for two: same MCS thresholds to within a code block's worth)."""

    def __init__(self, table: BlerTable, bler_target: float, step_up_db: float,
                 offset_min_db: float = -20.0, offset_max_db: float = 20.0, enabled: bool = True,
                 table2: BlerTable | None = None):
        self.table = table
        self.tables = {1: table} if table2 is None else {1: table, 2: table2}
        self.bler_target = bler_target    # also precomputes the MCS per SINR grid point
        self.step_up_db = step_up_db
        self.step_down_db = step_up_db * bler_target / (1.0 - bler_target)
        self.offset_min_db, self.offset_max_db = offset_min_db, offset_max_db
        self.enabled = enabled
        self.offset_db = 0.0

    def feedback(self, ack: bool) -> None:
        if not self.enabled:
            return
        off = self.offset_db - self.step_down_db if ack else self.offset_db + self.step_up_db
        self.offset_db = min(max(off, self.offset_min_db), self.offset_max_db)

    def select_mcs(self, sinr_eff_db: float, layers: int = 1) -> int:
        """Highest MCS with TBLER(sinr_eff_db - offset) <= target on ``layers`` layers; lowest available if none."""
        return int(self._best[layers][self.tables[layers].snr_index_scalar(sinr_eff_db - self.offset_db)])

    def mcs_of_snr_index(self, layers: int = 1) -> np.ndarray:
        """[num_snr] the MCS ``select_mcs`` picks at each SINR grid point (before the offset): for
        vectorised selection, ``mcs_of_snr_index()[table.snr_index(sinr_db - offset_db)]``."""
        return self._best[layers]

    @property
    def bler_target(self) -> float:
        return self._bler_target

    @bler_target.setter
    def bler_target(self, value: float) -> None:
        # best MCS per SINR grid point, precomputed: select_mcs is then one index
        self._bler_target = value
        self._best = {}
        for layers, table in self.tables.items():
            ok = table.tbler <= value                                      # [num_mcs, num_snr]
            last = ok.shape[0] - 1 - np.argmax(ok[::-1], axis=0)
            self._best[layers] = np.where(ok.any(axis=0), last, table.lowest_mcs)
