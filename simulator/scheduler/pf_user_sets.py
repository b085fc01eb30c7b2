"""Proportional-fair user sets per PRB group: the best UE, then greedy multi-user additions.

Per group g, with the PF metric m[u, g] = rate_bps[u, g] ** a / denom[u] of a UE alone, the set
starts with the group's seed (a retransmission) or else with the UE of the largest metric (none
when that metric is 0, where Sionna's argmax would give the group to UE 0). Further UEs are tried in decreasing m[u, g]; each joins while the set's PF
sum, sum over members v of set_rate[v] ** a / denom[v] with the set rates ``set_rate_fn`` gives,
increases, and the set stops growing at the first candidate that does not raise it or at
``max_ues`` members. With ``max_ues`` = 1 this is the single-user PF rule of Sionna SYS's
``PFSchedulerSUMIMO`` (argmax over UEs per resource). All growing groups are evaluated together:
``set_rate_fn`` is called at most ``max_ues - 1`` times per slot.
"""
from __future__ import annotations

import numpy as np

from simulator.scheduler.base import SetRateFn


def pf_user_sets(rate_bps: np.ndarray, denom: np.ndarray, eligible: np.ndarray, seeds: np.ndarray,
                 rate_exponent: float, max_ues: int, set_rate_fn: SetRateFn | None) -> np.ndarray:
    """The PF user set of every PRB group.

    rate_bps:  [num_ues, num_groups] float, single-user achievable rates, bit/s
    denom:     [num_ues] float > 0, the metric's denominator (past throughput ** exponent)
    eligible:  [num_ues, num_groups] bool, where a UE may be added
    seeds:     [num_groups] int, the UE already on each group (-1: none)
    returns:   [num_groups, max_ues] int64, members first, -1 pads
    """
    num_ues, num_groups = rate_bps.shape
    cols = np.arange(num_groups)
    metric = np.where(eligible, rate_bps ** rate_exponent / denom[:, None], -np.inf)
    ues = np.full((num_groups, max_ues), -1, dtype=np.int64)
    ues[:, 0] = seeds
    best = np.argmax(metric, axis=0)
    best_metric = metric[best, cols]
    take = (seeds < 0) & (best_metric > 0)
    ues[take, 0] = best[take]
    if max_ues == 1:
        return ues
    first = ues[:, 0]
    pf_sum = np.where(first >= 0, rate_bps[first, cols] ** rate_exponent / denom[first], 0.0)
    order = np.argsort(-metric, axis=0, kind="stable")          # [num_ues, num_groups] candidates, best first
    rank = np.where(take, 1, 0)                                   # the next candidate's position in order
    growing = np.flatnonzero(first >= 0)
    for k in range(1, max_ues):
        growing = growing[rank[growing] < num_ues]
        cand = order[rank[growing], growing]
        positive = metric[cand, growing] > 0
        growing, cand = growing[positive], cand[positive]
        if len(growing) == 0:
            break
        trial = ues[growing]
        trial[:, k] = cand
        rates = set_rate_fn(trial, growing)
        pf = np.where(trial >= 0, rates ** rate_exponent / denom[trial], 0.0).sum(axis=1)
        better = pf > pf_sum[growing]
        growing, trial, pf = growing[better], trial[better], pf[better]
        ues[growing], pf_sum[growing] = trial, pf
        rank[growing] += 1
    return ues
