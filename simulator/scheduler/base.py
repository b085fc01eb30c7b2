"""The scheduler interface: what the engine passes each slot and the allocation it gets back.

Every scheduler is called once per slot with the same three arrays (``num_ues`` UEs,
``num_groups`` PRB groups of ``group_sizes_prbs``):

- ``rate_bps`` [num_ues, num_groups] float: the rate each UE would get on each group alone, in
  bit/s (from the CQI the gNB holds; the same number whatever else is scheduled).
- ``retx_groups`` [num_ues] int: PRB groups the UE's pending HARQ retransmission needs (the size of
  its original allocation), 0 when it has none. Retransmissions are served first.
- ``last_slot_rate_bps`` [num_ues] float: the rate the UE got in the previous slot, bit/s, which
  proportional fair folds into its past throughput before it schedules (Sionna SYS's
  ``rate_last_slot``). The engine's choice: the TBS of the UE's new transmission in that slot
  divided by the slot duration, 0 for a retransmission or no transmission, i.e. the rate
  scheduled, known at once (ns-3 5G-LENA's PF counts the assigned transport block the same way),
  rather than the decoded bits, which reach the gNB ``harq.k1_slots`` later.

Traffic is full buffer: every UE always has data for all the groups it can get.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# set_rate_fn(ue_sets [num_sets, max_ues_per_prb] int, groups [num_sets] int) -> [num_sets, max_ues_per_prb]
# float bit/s: row i is a candidate user set on PRB group groups[i] (members first, -1 pads); the
# result is each member's achievable rate on that group when the whole set is co-scheduled there
# (precoding, power split and inter-user interference are the caller's); pads are ignored.
SetRateFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Allocation:
    """One slot's allocation.

    ues:            [num_groups, max_ues_per_prb] int64, the UEs on each PRB group, -1 where none
                    (single-user: max_ues_per_prb = 1, column 0)
    prbs:           [num_ues] int64, PRBs allocated to each UE (its groups' sizes summed)
    retransmission: [num_ues] bool, the UE's allocation carries its pending retransmission (a UE
                    with ``retx_groups`` > 0 and False here was deferred and got nothing)
    """
    ues: np.ndarray
    prbs: np.ndarray
    retransmission: np.ndarray

    @classmethod
    def of(cls, ues: np.ndarray, group_sizes_prbs: np.ndarray, retransmission: np.ndarray) -> "Allocation":
        """The allocation of the user sets ``ues`` [num_groups, max_ues_per_prb], PRB counts summed."""
        prbs = np.bincount(ues.ravel() + 1, weights=np.repeat(group_sizes_prbs, ues.shape[1]),
                           minlength=len(retransmission) + 1)[1:]                    # bin 0: the -1 pads
        return cls(ues, prbs.astype(np.int64), retransmission)

    def groups_of(self, ue: int) -> np.ndarray:
        """[k] int64: the PRB groups allocated to ``ue``, ascending."""
        return np.flatnonzero((self.ues == ue).any(axis=1))


class Scheduler(Protocol):
    """A per-slot scheduler of ``group_sizes_prbs`` [num_groups] PRB groups (module docstring: inputs)."""
    group_sizes_prbs: np.ndarray

    def schedule(self, rate_bps: np.ndarray, retx_groups: np.ndarray,
                 last_slot_rate_bps: np.ndarray) -> Allocation: ...
