"""HARQ retransmissions first: the groups they need, before any new allocation, alone, in UE order."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.scheduler.config import PfConfig
from simulator.scheduler.pf import PfScheduler
from simulator.scheduler.retransmissions import serve_retransmissions
from simulator.scheduler.round_robin import RoundRobinScheduler

NUM_UES, NUM_GROUPS = 4, 13


def test_pf_serves_a_retransmission_on_its_best_groups_even_at_the_lowest_metric(rng):
    rate = rng.uniform(5e6, 1e7, size=(NUM_UES, NUM_GROUPS))
    rate[2] = rng.uniform(1e5, 2e5, size=NUM_GROUPS)           # UE 2 would never win a group
    sched = PfScheduler(PfConfig(), NUM_UES, np.full(NUM_GROUPS, 4))
    alloc = sched.schedule(rate, np.array([0, 0, 3, 0]), np.zeros(NUM_UES))
    np.testing.assert_array_equal(alloc.groups_of(2), np.sort(np.argsort(-rate[2])[:3]))
    assert alloc.prbs[2] == 12 and alloc.retransmission.tolist() == [False, False, True, False]
    assert np.all(alloc.ues[:, 0] >= 0) and alloc.prbs.sum() == 4 * NUM_GROUPS


def test_round_robin_serves_retransmissions_on_the_lowest_groups_and_skips_them_in_the_cycle():
    sched = RoundRobinScheduler(NUM_UES, np.full(NUM_GROUPS, 4))
    alloc = sched.schedule(None, np.array([0, 2, 0, 3]), None)
    assert alloc.ues[:, 0].tolist() == [1, 1, 3, 3, 3] + [0, 2] * 4
    assert alloc.retransmission.tolist() == [False, True, False, True]


@pytest.mark.parametrize("make", [
    lambda: PfScheduler(PfConfig(), NUM_UES, np.full(NUM_GROUPS, 4)),
    lambda: RoundRobinScheduler(NUM_UES, np.full(NUM_GROUPS, 4)),
])
def test_colliding_retransmissions_defer_the_later_ue(rng, make):
    alloc = make().schedule(rng.uniform(1e6, 1e7, size=(NUM_UES, NUM_GROUPS)), np.array([0, 8, 0, 8]),
                            np.zeros(NUM_UES))
    assert alloc.retransmission.tolist() == [False, True, False, False]
    assert alloc.prbs[1] == 32 and alloc.prbs[3] == 0                       # deferred: nothing this slot
    assert set(alloc.ues[:, 0].tolist()) <= {0, 1, 2} and alloc.prbs.sum() == 4 * NUM_GROUPS


def test_a_need_above_the_carrier_is_refused():
    with pytest.raises(ValueError, match="0..13"):
        serve_retransmissions(np.array([0, 14, 0, 0]), np.zeros((NUM_UES, NUM_GROUPS)))
