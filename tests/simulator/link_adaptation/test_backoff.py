"""CQI-Tune's loop bounds."""
from __future__ import annotations

import pytest

from simulator.link_adaptation.backoff import cqi_tune


@pytest.mark.parametrize("cqi_table, cqi_min, expect", [
    (10, None, 9),      # default CQI_min = table - 1: one step at most
    (10, 1, 1),         # always pessimistic: down to CQI_min, never below
    (1, None, 1),       # max(CQI_table - 1, 1) = 1
    (5, 7, 5),          # CQI_min above the table CQI: no backoff
])
def test_backoff_stops_at_cqi_min(cqi_table, cqi_min, expect):
    cqi, asked = cqi_tune(cqi_table, lambda c: 1.0, tau_bler=0.9, cqi_min=cqi_min)
    assert cqi == expect
    assert asked == list(range(cqi_table, expect - 1, -1))


def test_backoff_stops_when_prediction_drops_below_tau():
    bler = {12: 1.0, 11: 0.9, 10: 0.5, 9: 0.0}
    assert cqi_tune(12, bler.__getitem__, tau_bler=0.9, cqi_min=1) == (10, [12, 11, 10])
    # tau is inclusive (>=): a prediction of exactly 0.9 backs off
    assert cqi_tune(11, bler.__getitem__, tau_bler=0.9, cqi_min=1)[0] == 10
    assert cqi_tune(10, bler.__getitem__, tau_bler=0.9, cqi_min=1) == (10, [10])


def test_out_of_range_cqi_untouched():
    assert cqi_tune(0, lambda c: 1.0) == (0, [])
