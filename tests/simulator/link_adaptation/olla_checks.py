"""Checks of OLLA's bookkeeping from the logs, shared by the abstraction and link_level tests."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def assert_offsets_follow_feedback(slots: pd.DataFrame, target: float, step_up_db: float) -> float:
    """The offset in force at each slot is the sum of the steps of every first-transmission ACK/NACK
    that reached the gNB by then (k1 slots after its transmission). Returns the final offset.

    Consequence (no clamping): n_nack / N - target = (1 - target) * offset_final / (step_up * N).
    """
    first = slots[slots.tx_round == 1]
    down = step_up_db * target / (1 - target)
    steps = first.sort_values("ack_t_us")
    cum = steps.ack.map({True: -down, False: step_up_db}).cumsum().to_numpy()
    received = steps.ack_t_us.searchsorted(slots.t_us.to_numpy(), side="right")
    expect = np.concatenate([[0.0], cum])[received]
    np.testing.assert_allclose(slots.olla_offset_db.to_numpy(), expect, atol=1e-3)
    n, n_nack = len(first), int((~first.ack).sum())
    assert n_nack / n - target == pytest.approx((1 - target) * cum[-1] / (step_up_db * n), abs=1e-6)
    return float(cum[-1])
