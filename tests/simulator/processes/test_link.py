"""Links: FIFO serialisation at the capacity, then the delay; delivered into the receiving side's
inbox Store when the last bit arrives (exact times)."""
from __future__ import annotations

from simulator.link import Link, Message


def test_fifo_serialisation_then_delay(env):
    link = Link(env, "feedback", 1e6, 500, [0, 1])      # 1 bit/us, 0.5 ms delay
    got = []

    def sender():
        link.send(Message("report", 0, 1000, "a", created_us=0))
        yield env.timeout(100)
        link.send(Message("report", 1, 10, "b", created_us=100))   # waits behind "a"
        link.send(Message("report", 0, 1, "c", created_us=100))

    def receiver(ue):
        while True:
            msg = yield link.inbox(ue).get()
            got.append((env.now, ue, msg.payload, msg.sent_us, msg.arrival_us))

    env.process(sender())
    env.process(receiver(0))
    env.process(receiver(1))
    env.run(until=5000)
    assert got == [(1500, 0, "a", 0, 1500), (1510, 1, "b", 100, 1510), (1511, 0, "c", 100, 1511)]
    assert link.bits_sent == 1011 and link.busy_us == 1011
