"""The uplink feedback pipe: a FIFO with a capacity and a delay that CSI reports (and, later,
model updates) travel on. The SimPy process lives in ``simulator/processes/feedback.py``."""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Message:
    """Something sent on the feedback link. ``arrival_us`` is set when it starts serialising;
    ``on_arrival(msg)``, if given, runs at the gNB at ``arrival_us``."""
    kind: str                      # "cqi" (may carry a compressed CSI report), "csi_update", ...
    ue: int
    bits: int
    payload: Any
    created_us: int
    sent_us: int = -1
    arrival_us: int = -1
    on_arrival: Any = None


@dataclass
class Inbox:
    """Messages on their way to (or arrived at) the gNB, in arrival order.

    ``pop_arrived(t_us)`` returns the messages whose arrival time is <= t_us, so a message
    that arrives exactly at a slot boundary is used by that slot.
    """
    queue: deque = field(default_factory=deque)

    def push(self, msg: Message) -> None:
        self.queue.append(msg)

    def pop_arrived(self, t_us: int) -> list[Message]:
        out = []
        q = self.queue
        while q and q[0].arrival_us <= t_us:
            out.append(q.popleft())
        return out


def serialisation_us(bits: int, capacity_bps: float) -> int:
    """Time on the pipe, rounded up to whole microseconds and at least 1 us."""
    return max(1, math.ceil(bits * 1e6 / capacity_bps))
