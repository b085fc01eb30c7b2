"""Round robin: the cyclic order exactly, and exactly equal airtime over any num_ues slots."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.scheduler.round_robin import RoundRobinScheduler


def no_retx(num_ues: int) -> np.ndarray:
    return np.zeros(num_ues, dtype=np.int64)


def test_exact_trace_of_the_cycle_and_the_rotating_start():
    sched = RoundRobinScheduler(3, np.array([4, 4]))
    trace = [sched.schedule(None, no_retx(3), None).ues[:, 0].tolist() for _ in range(4)]
    # slot s fills groups from s mod 2, taking the next UEs of 0, 1, 2, 0, 1, ...
    assert trace == [[0, 1], [0, 2], [1, 2], [1, 0]]


@pytest.mark.parametrize("num_ues, max_ues", [(n, m) for n in (1, 2, 3, 5, 8, 13, 16, 64) for m in (1, 2, 4)
                                               if m <= n])
def test_equal_airtime_exactly_over_any_num_ues_slots(num_ues, max_ues):
    num_groups = 13
    sched = RoundRobinScheduler(num_ues, np.full(num_groups, 4), max_ues)
    counts = []
    for _ in range(3 * num_ues + 5):
        ues = sched.schedule(None, no_retx(num_ues), None).ues
        assert np.all(ues >= 0)                                          # every position filled
        assert all(len(set(row)) == max_ues for row in ues.tolist())     # distinct UEs per group
        counts.append(np.bincount(ues.ravel(), minlength=num_ues))
    counts = np.array(counts)
    for start in range(len(counts) - num_ues + 1):
        window = counts[start:start + num_ues].sum(axis=0)
        assert np.all(window == num_groups * max_ues), (start, window)


def test_more_positions_than_ues_puts_every_ue_on_every_group():
    sched = RoundRobinScheduler(2, np.full(5, 4), max_ues_per_prb=3)
    alloc = sched.schedule(None, no_retx(2), None)
    assert np.all(np.sort(alloc.ues[:, :2], axis=1) == [0, 1]) and np.all(alloc.ues[:, 2] == -1)
    assert alloc.prbs.tolist() == [20, 20]


def test_a_shorter_last_group_moves_between_ues():
    sched = RoundRobinScheduler(2, np.array([8, 4]))
    prbs = sum(sched.schedule(None, no_retx(2), None).prbs for _ in range(4))
    assert prbs.tolist() == [24, 24]
