"""HARQ retransmissions first: each one gets as many PRB groups as its original allocation had.

UEs with a pending retransmission are served in increasing UE index, each on the free groups it
prefers most (proportional fair: its highest rates; round robin: the lowest indices). One whose
need exceeds the groups left is deferred to a later slot and gets nothing in this one; that can
happen only when retransmissions of different slots collide, since those of one slot fit in the
groups they had. A UE sends its retransmission alone in its slot (no new data beside it), so
every UE with one is left out of the groups the scheduler then allocates.
"""
from __future__ import annotations

import numpy as np


def serve_retransmissions(retx_groups: np.ndarray, preference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The groups the pending retransmissions take.

    retx_groups: [num_ues] int, groups each UE's retransmission needs (0: none)
    preference:  [num_ues, num_groups] float, higher = preferred (ties: the lower group index)
    returns:     owner [num_groups] int64 (the retransmitting UE on each group, -1 = free) and
                 served [num_ues] bool (the UE's retransmission got its groups)
    Raises ValueError for a need above the carrier's groups (it could never be served).
    """
    num_ues, num_groups = preference.shape
    owner = np.full(num_groups, -1, dtype=np.int64)
    served = np.zeros(num_ues, dtype=bool)
    pending = np.flatnonzero(retx_groups)
    if len(pending) == 0:
        return owner, served
    if retx_groups.max() > num_groups or retx_groups.min() < 0:
        raise ValueError(f"retx_groups must be in 0..{num_groups} (got {retx_groups.tolist()})")
    for ue in pending:
        free = np.flatnonzero(owner < 0)
        need = retx_groups[ue]
        if need <= len(free):
            owner[free[np.argsort(-preference[ue, free], kind="stable")[:need]]] = ue
            served[ue] = True
    return owner, served
