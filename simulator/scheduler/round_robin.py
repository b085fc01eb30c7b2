"""Round robin: PRB-group positions to the UEs in a fixed cyclic order, blind to the channel.

The rule: UEs 0, 1, ..., num_ues - 1, 0, 1, ... form one cycle that continues across slots. Each
slot, after the retransmissions (which take the lowest free groups), the free positions are
filled from the cycle group by group: a group takes the next min(max_ues_per_prb, E) UEs, E being
the UEs without a pending retransmission (those are skipped), all its positions but the one a
retransmission holds. Groups are visited from group s mod num_groups in slot s (the start rotates,
so a shorter last group moves between UEs). Without retransmissions each slot takes
num_groups x max_ues_per_prb consecutive UEs of the cycle (max_ues_per_prb <= num_ues), so over any
num_ues consecutive slots every UE gets exactly num_groups x max_ues_per_prb PRB-group-slots.
"""
from __future__ import annotations

import numpy as np

from simulator.scheduler.base import Allocation
from simulator.scheduler.retransmissions import serve_retransmissions


class RoundRobinScheduler:
    """Round robin over ``group_sizes_prbs`` [num_groups] PRB groups.

    schedule: rate_bps [num_ues, num_groups] (unused: round robin is channel-blind), retx_groups
              [num_ues] int, last_slot_rate_bps [num_ues] (unused) -> Allocation
    """

    def __init__(self, num_ues: int, group_sizes_prbs: np.ndarray, max_ues_per_prb: int = 1):
        self.num_ues = num_ues
        self.group_sizes_prbs = np.asarray(group_sizes_prbs, dtype=np.int64)
        self.max_ues_per_prb = max_ues_per_prb
        self._next_ue = 0          # where the cycle resumes
        self._slot = 0             # rotates the first group visited
        num_groups = len(self.group_sizes_prbs)
        self._lowest_first = np.broadcast_to(-np.arange(num_groups, dtype=np.float64), (num_ues, num_groups))

    def schedule(self, rate_bps: np.ndarray, retx_groups: np.ndarray, last_slot_rate_bps: np.ndarray) -> Allocation:
        num_groups = len(self.group_sizes_prbs)
        owner, served = serve_retransmissions(retx_groups, self._lowest_first)
        ues = np.full((num_groups, self.max_ues_per_prb), -1, dtype=np.int64)
        ues[:, 0] = owner
        cycle = np.flatnonzero(retx_groups == 0)                     # the UEs the cycle serves this slot
        visit = (np.arange(num_groups) + self._slot) % num_groups
        self._slot += 1
        if len(cycle) == 0:
            return Allocation.of(ues, self.group_sizes_prbs, served)
        held = (owner[visit] >= 0).astype(np.int64)                   # column 0 taken by a retransmission
        count = np.minimum(self.max_ues_per_prb - held, len(cycle))  # [num_groups] positions to fill, visit order
        start = np.searchsorted(cycle, self._next_ue) % len(cycle)
        picked = cycle[(start + np.arange(count.sum())) % len(cycle)]
        group = np.repeat(visit, count)
        col = np.arange(len(picked)) - np.repeat(np.cumsum(count) - count, count) + np.repeat(held, count)
        ues[group, col] = picked
        if len(picked):
            self._next_ue = (picked[-1] + 1) % self.num_ues
        return Allocation.of(ues, self.group_sizes_prbs, served)
