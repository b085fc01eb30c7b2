"""A link between the UE and the gNB: a FIFO pipe with a capacity and a delay, delivering
messages as SimPy events.

A sender ``send``s a :class:`Message`; the link serialises messages one after another at
``capacity_bps`` (nothing overtakes: a large model update delays what queues behind it), adds
``delay_us``, and puts each message into the receiving side's Store (``inbox(ue)``) when its last
bit arrives. Receiving processes ``yield link.inbox(ue).get()``. CQI/CSI reports and CSI decoder
updates travel on the uplink (feedback link), receiver updates on a downlink.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import simpy


@dataclass(slots=True)
class Message:
    """Something sent on a link. ``sent_us`` is set by ``send``, ``arrival_us`` when the message
    starts serialising (FIFO: nothing can overtake it)."""
    kind: str                      # "report" (CQI, may carry a compressed CSI report) or "update"
    ue: int
    bits: int
    payload: Any
    created_us: int
    sent_us: int = -1
    arrival_us: int = -1


def serialisation_us(bits: int, capacity_bps: float) -> int:
    """Time on the pipe, rounded up to whole microseconds and at least 1 us."""
    return max(1, math.ceil(bits * 1e6 / capacity_bps))


class Link:
    """FIFO pipe of ``capacity_bps`` followed by ``delay_us``, one inbox Store per UE at the
    receiving end. ``bits_sent`` and ``busy_us`` count what it carried."""

    def __init__(self, env: simpy.Environment, name: str, capacity_bps: float, delay_us: int,
                 ues: list[int], trace: list | None = None):
        self.env, self.name = env, name
        self.capacity_bps, self.delay_us = float(capacity_bps), int(delay_us)
        self.trace = trace
        self._queue = simpy.Store(env)
        self._inboxes = {int(u): simpy.Store(env) for u in ues}
        self.bits_sent = 0
        self.busy_us = 0
        env.process(self._serialise())

    def inbox(self, ue: int) -> simpy.Store:
        """The receiving side's Store of UE ``ue``'s messages, in arrival order."""
        return self._inboxes[ue]

    def send(self, msg: Message) -> None:
        msg.sent_us = self.env.now
        self._queue.put(msg)

    def _serialise(self):
        while True:
            msg = yield self._queue.get()
            tx_us = serialisation_us(msg.bits, self.capacity_bps)
            msg.arrival_us = self.env.now + tx_us + self.delay_us
            self.bits_sent += msg.bits
            self.busy_us += tx_us
            if self.trace is not None:
                self.trace.append((self.env.now, f"{self.name}_start", msg.ue, msg.kind, msg.arrival_us))
            self.env.process(self._deliver(msg))
            yield self.env.timeout(tx_us)

    def _deliver(self, msg: Message):
        yield self.env.timeout(msg.arrival_us - self.env.now)
        yield self._inboxes[msg.ue].put(msg)
