"""CQI-Tune (LightTune paper, Algorithm 2): back the table-based CQI off while the predicted
BLER of the candidate CQI is >= tau_BLER, never below CQI_min.

The algorithm box reads "while P(CQI) >= tau and CQI >= CQI_min: CQI -= 1", which can end one
below CQI_min; the text says the reduction "continues as long as the CQI does not drop below
CQI_min". We follow the text: the reported CQI is always >= CQI_min.
"""
from __future__ import annotations

from typing import Callable


def cqi_min_default(cqi_table: int) -> int:
    """CQI_min = max(CQI_table - 1, 1): at most one step below the table's choice."""
    return max(cqi_table - 1, 1)


def cqi_tune(cqi_table: int, predict_bler: Callable[[int], float], tau_bler: float = 0.9,
             cqi_min: int | None = None) -> tuple[int, list[int]]:
    """-> (reported CQI, the CQIs whose BLER was predicted, in order). CQI 0 is left alone."""
    if cqi_table <= 0:
        return cqi_table, []
    lo = cqi_min_default(cqi_table) if cqi_min is None else max(1, min(cqi_min, cqi_table))
    cqi = cqi_table
    asked = [cqi]
    while predict_bler(cqi) >= tau_bler and cqi - 1 >= lo:
        cqi -= 1
        asked.append(cqi)
    return cqi, asked
