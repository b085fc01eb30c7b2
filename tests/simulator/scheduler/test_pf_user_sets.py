"""Greedy multi-user PF sets: known answers at no and at crushing interference, the greedy's
invariants (PF sum rises with every member, at most max_ues_per_prb, stops at the first
candidate that does not raise it) on random co-scheduling losses."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.scheduler.config import PfConfig
from simulator.scheduler.pf import PfScheduler
from simulator.scheduler.pf_user_sets import pf_user_sets

NUM_UES, NUM_GROUPS = 7, 13


def random_loss_set_rates(rate_bps: np.ndarray, calls: list):
    """set_rate_fn: each member keeps a fraction in [0.2, 1] of its alone rate, drawn from the
    (group, sorted set) so the same set on the same group always gets the same rates."""
    def fn(ue_sets, groups):
        calls.append(len(groups))
        out = np.zeros(ue_sets.shape)
        for i, (s, g) in enumerate(zip(ue_sets, groups)):
            members = s[s >= 0]
            loss = np.random.default_rng([g, *sorted(members)]).uniform(0.2, 1.0, size=NUM_UES)
            out[i, :len(members)] = rate_bps[members, g] * (loss[members] if len(members) > 1 else 1.0)
        return out
    return fn


def pf_sum(fn, members: list[int], g: int, denom: np.ndarray) -> float:
    rates = fn(np.array([members]), np.array([g]))[0, :len(members)]
    return float((rates / denom[members]).sum())


def test_without_interference_every_group_takes_its_top_metrics(rng):
    rate = rng.uniform(1e6, 1e7, size=(NUM_UES, NUM_GROUPS))
    denom = rng.uniform(1e5, 1e6, size=NUM_UES)
    alone = lambda ue_sets, groups: np.where(ue_sets >= 0, rate[ue_sets, groups[:, None]], 0.0)
    eligible = np.ones_like(rate, dtype=bool)
    ues = pf_user_sets(rate, denom, eligible, np.full(NUM_GROUPS, -1), 1.0, 4, alone)
    top4 = np.argsort(-(rate / denom[:, None]), axis=0)[:4].T
    np.testing.assert_array_equal(ues, top4)


def test_crushing_interference_leaves_the_single_user_allocation(rng):
    rate = rng.uniform(1e6, 1e7, size=(NUM_UES, NUM_GROUPS))
    denom = rng.uniform(1e5, 1e6, size=NUM_UES)
    # k members keep 1/k^2 of their rates: the set's PF sum is below its best member's alone
    crushed = lambda ue_sets, groups: np.where(ue_sets >= 0, rate[ue_sets, groups[:, None]], 0.0) / (
        (ue_sets >= 0).sum(axis=1, keepdims=True) ** 2)
    eligible = np.ones_like(rate, dtype=bool)
    mu = pf_user_sets(rate, denom, eligible, np.full(NUM_GROUPS, -1), 1.0, 4, crushed)
    su = pf_user_sets(rate, denom, eligible, np.full(NUM_GROUPS, -1), 1.0, 1, None)
    np.testing.assert_array_equal(mu[:, 0], su[:, 0])
    assert np.all(mu[:, 1:] == -1)


@pytest.mark.parametrize("max_ues", [2, 3, 4])
def test_greedy_never_lowers_the_pf_sum_and_respects_max_ues(rng, max_ues):
    for _ in range(20):
        rate = rng.uniform(0, 1e7, size=(NUM_UES, NUM_GROUPS)) * (rng.uniform(size=(NUM_UES, NUM_GROUPS)) > 0.2)
        denom = rng.uniform(1e5, 1e6, size=NUM_UES)
        eligible = rng.uniform(size=(NUM_UES, 1)) > 0.15
        eligible = np.broadcast_to(eligible, rate.shape)
        calls = []
        fn = random_loss_set_rates(rate, calls)
        ues = pf_user_sets(rate, denom, eligible, np.full(NUM_GROUPS, -1), 1.0, max_ues, fn)
        assert ues.shape == (NUM_GROUPS, max_ues) and len(calls) <= max_ues - 1
        metric = np.where(eligible, rate / denom[:, None], -np.inf)
        for g, row in enumerate(ues):
            members = row[row >= 0].tolist()
            assert row[len(members):].tolist() == [-1] * (max_ues - len(members))     # members first
            assert len(set(members)) == len(members) and all(eligible[members, g])
            if not members:
                assert metric[:, g].max() <= 0
                continue
            assert members[0] == np.argmax(metric[:, g])
            sums = [pf_sum(fn, members[:k], g, denom) for k in range(1, len(members) + 1)]
            assert all(b > a for a, b in zip(sums, sums[1:])), sums
            assert members == sorted(members, key=lambda u: -metric[u, g])             # added in metric order
            rest = [u for u in np.argsort(-metric[:, g], kind="stable") if u not in members and metric[u, g] > 0]
            if len(members) < max_ues and rest:                                       # stopped at a non-improver
                assert pf_sum(fn, members + [rest[0]], g, denom) <= sums[-1]


def test_mu_scheduler_seeds_a_retransmission_and_keeps_it_off_other_groups(rng):
    rate = rng.uniform(1e6, 1e7, size=(NUM_UES, NUM_GROUPS))
    alone = lambda ue_sets, groups: np.where(ue_sets >= 0, rate[ue_sets, groups[:, None]], 0.0)
    sched = PfScheduler(PfConfig(), NUM_UES, np.full(NUM_GROUPS, 4), max_ues_per_prb=3, set_rate_fn=alone)
    retx = np.zeros(NUM_UES, dtype=np.int64)
    retx[5] = 2
    alloc = sched.schedule(rate, retx, np.zeros(NUM_UES))
    mine = np.sort(np.argsort(-rate[5])[:2])
    np.testing.assert_array_equal(alloc.groups_of(5), mine)
    assert np.all(alloc.ues[mine, 0] == 5) and np.all(alloc.ues[mine, 1:] >= 0)    # co-scheduled beside it
    assert alloc.retransmission.tolist() == [False] * 5 + [True, False]
    assert np.all((alloc.ues >= 0).sum(axis=1) == 3) and alloc.prbs.sum() == 3 * 4 * NUM_GROUPS
