"""feedback: the uplink pipe as a SimPy process (one per cell)."""
from __future__ import annotations

from typing import Callable

import simpy

from simulator.feedback import Message, serialisation_us


class FeedbackLink:
    """FIFO pipe of ``capacity_bps`` followed by ``delay_us``; delivers to ``deliver(msg)``.

    A message's arrival time is fixed when it starts serialising (FIFO: nothing can overtake
    it), and it is handed to the receiver's inbox at that moment with its arrival time; the
    receiver only uses it once ``env.now >= arrival_us``.
    """

    def __init__(self, env: simpy.Environment, capacity_bps: float, delay_us: int,
                 deliver: Callable[[Message], None], trace: list | None = None):
        self.env = env
        self.capacity_bps = capacity_bps
        self.delay_us = delay_us
        self.deliver = deliver
        self.trace = trace
        self.queue = simpy.Store(env)
        self.bits_sent = 0
        self.busy_us = 0
        env.process(self._run())

    def send(self, msg: Message) -> None:
        msg.sent_us = self.env.now
        self.queue.put(msg)

    def _run(self):
        while True:
            msg = yield self.queue.get()
            tx_us = serialisation_us(msg.bits, self.capacity_bps)
            msg.arrival_us = self.env.now + tx_us + self.delay_us
            self.bits_sent += msg.bits
            self.busy_us += tx_us
            if self.trace is not None:
                self.trace.append((self.env.now, "feedback_start", msg.ue, msg.kind, msg.arrival_us))
            self.deliver(msg)
            if msg.on_arrival is not None:
                self.env.timeout(msg.arrival_us - self.env.now).callbacks.append(
                    lambda _ev, m=msg: m.on_arrival(m))
            yield self.env.timeout(tx_us)
