"""OLLA over the link_level backend (slow: every transport block is LDPC-decoded).

Tolerance: OLLA's offset obeys offset_end - offset_start = step_up * n_nack - step_down * n_ack
(no clamping), with step_down = step_up * t / (1 - t). Hence, exactly,
    n_nack / N - t = (1 - t) * (offset_end - offset_start) / (step_up * N).
The offset moves by at most a few dB over a run (the LS receiver's loss against the tables,
the CQI's staleness), so with N ~ 2,000 first transmissions and step_up = 0.5 dB a drift of
5 dB shifts the BLER by 0.0045: +/- 2 % is generous for the control loop. The offsets
themselves are checked against the logged ACK/NACK sequence (tests.simulator.link_adaptation.olla_checks.py).
"""
from __future__ import annotations

import pandas as pd
import pytest

from simulator.engine import Simulation
from tests.simulator.link_adaptation.olla_checks import assert_offsets_follow_feedback

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("receiver", ["lmmse"])
def test_olla_holds_first_tx_bler_link_level(make_scenario, tmp_path, receiver):
    sc = make_scenario({"duration_s": 1.0, "carrier.num_prbs": 12, "phy.backend": "link_level",
                        "phy.receiver": receiver, "csi_rs.period_ms": 10})
    summary = Simulation(sc, tmp_path).run()
    slots = pd.read_parquet(tmp_path / "slots.parquet")
    first = slots[slots.tx_round == 1]
    print(f"\nlink_level OLLA ({receiver}): first-tx BLER {summary.first_tx_bler:.4f} over {len(first)} "
          f"first transmissions, residual {summary.residual_bler:.4f}")
    assert len(first) > 1700            # 2,000 slots, ~10 % of them retransmissions
    assert summary.first_tx_bler == pytest.approx(0.1, abs=0.02)
    assert_offsets_follow_feedback(slots, 0.1, 0.5)
    assert slots.ber.notna().all()
