"""Proportional fair scheduling, single-user (Sionna SYS's rule) or with greedy multi-user sets.

The rule and the throughput update are Sionna SYS ``PFSchedulerSUMIMO``'s, written in numpy: its
eager call costs ~1 ms per slot at 1..64 UEs x 13 groups (~0.15 ms inside a ``tf.function``) while
the event loop needs 2,000 slots/s, i.e. 0.5 ms per slot for everything; this one costs 16-18 us single-user
(tests/benchmarks/bench_scheduler.py). tests/simulator/scheduler/test_pf.py checks it
against Sionna's on random inputs, slot by slot: same allocation, same past throughput.

Each slot, as Sionna's ``call``: the past throughput is updated first,
``T <- beta T + (1 - beta) last_slot_rate_bps`` (T starts at 1 bit/s, as Sionna's), then
retransmissions take their groups and every other group goes to the user set of
:mod:`simulator.scheduler.pf_user_sets` with metric ``rate_bps ** rate_exponent /
T ** throughput_exponent``. The denominator is floored at the smallest normal float so a UE whose
throughput has decayed to nothing gets a finite or infinite metric, never 0 / 0.
"""
from __future__ import annotations

import numpy as np

from simulator.scheduler.base import Allocation, SetRateFn
from simulator.scheduler.config import PfConfig
from simulator.scheduler.pf_user_sets import pf_user_sets
from simulator.scheduler.retransmissions import serve_retransmissions

TINY = np.finfo(np.float64).tiny


class PfScheduler:
    """Proportional fair over ``group_sizes_prbs`` [num_groups] PRB groups.

    schedule: rate_bps [num_ues, num_groups] bit/s, retx_groups [num_ues] int,
              last_slot_rate_bps [num_ues] bit/s -> Allocation (simulator.scheduler.base)
    throughput_bps: [num_ues] float, the past throughput T after the last ``schedule``
    ``set_rate_fn`` (simulator.scheduler.base.SetRateFn) is needed when ``max_ues_per_prb`` > 1.
    """

    def __init__(self, cfg: PfConfig, num_ues: int, group_sizes_prbs: np.ndarray, max_ues_per_prb: int = 1,
                 set_rate_fn: SetRateFn | None = None):
        if max_ues_per_prb > 1 and set_rate_fn is None:
            raise ValueError(f"max_ues_per_prb {max_ues_per_prb} needs a set_rate_fn for the co-scheduled rates")
        self.cfg = cfg
        self.group_sizes_prbs = np.asarray(group_sizes_prbs, dtype=np.int64)
        self.max_ues_per_prb = max_ues_per_prb
        self.set_rate_fn = set_rate_fn
        self.throughput_bps = np.ones(num_ues)

    def schedule(self, rate_bps: np.ndarray, retx_groups: np.ndarray, last_slot_rate_bps: np.ndarray) -> Allocation:
        cfg = self.cfg
        if rate_bps.shape != (len(self.throughput_bps), len(self.group_sizes_prbs)):
            raise ValueError(f"rate_bps must be [num_ues, num_groups] = "
                             f"{[len(self.throughput_bps), len(self.group_sizes_prbs)]} (got {list(rate_bps.shape)})")
        self.throughput_bps = cfg.beta * self.throughput_bps + (1 - cfg.beta) * last_slot_rate_bps
        denom = np.maximum(self.throughput_bps ** cfg.throughput_exponent, TINY)
        owner, served = serve_retransmissions(retx_groups, rate_bps)
        eligible = np.broadcast_to((retx_groups == 0)[:, None], rate_bps.shape)     # a retransmission goes alone
        ues = pf_user_sets(rate_bps, denom, eligible, owner, cfg.rate_exponent, self.max_ues_per_prb,
                           self.set_rate_fn)
        return Allocation.of(ues, self.group_sizes_prbs, served)
