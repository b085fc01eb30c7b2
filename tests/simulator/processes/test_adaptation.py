"""The one adaptation path: job -> compute time -> optional message on a link -> apply on
arrival -> one updates row (exact traces)."""
from __future__ import annotations

import math

import pytest

from models.base import Update
from simulator.link import Link, serialisation_us
from simulator.processes.adaptation import Adaptation
from simulator.processes.context import RunContext
from simulator.processes.inbox import ue_inbox_process


def _update(applied: list, env, *, bits: int = 0, compute_us: int = 300, measured: dict | None = None) -> Update:
    def apply() -> dict:
        applied.append(env.now)
        return measured or {}

    return Update(model="m", trigger="t", trigger_value=0.5, compute_us=compute_us, apply=apply, update_bits=bits,
                  payload=b"x" * (bits // 8) if bits else None, state_bytes=7, loss_before=2.0, loss_after=1.0)


def test_local_update_applies_after_its_compute_time(env, log):
    applied = []
    ad = Adaptation(env, log)

    def trigger():
        yield env.timeout(1000)
        ad.start(3, _update(applied, env))

    env.process(trigger())
    env.run()
    assert applied == [1300]
    (row,) = log["updates"]
    assert (row["t_us"], row["ue"], row["compute_us"], row["applied_t_us"], row["update_bits"]) == (1000, 3, 300, 1300, 0)
    assert row["model"] == "m" and row["trigger_value"] == 0.5 and math.isnan(row["ber_gap_after"])


def test_update_on_a_link_applies_when_its_last_bit_arrives(env, log):
    """800 bits at 100 kbit/s = 8 ms on the pipe, then 2 ms delay; a report queued behind it waits."""
    applied, trace = [], []
    ad = Adaptation(env, log, trace)
    link = Link(env, "downlink", 100e3, 2000, [0], trace=trace)
    run = RunContext(env, log, ad, slot_us=500, duration_us=10**6, trace=trace)
    env.process(ue_inbox_process(run, link.inbox(0)))
    job = ad.start(0, _update(applied, env, bits=800, measured={"ber_gap_after": 0.25}), link=link)
    env.run(until=20000)
    assert serialisation_us(800, 100e3) == 8000
    assert applied == [300 + 8000 + 2000] and job.applied.value == 10300
    assert [e[:2] for e in trace] == [(300, "update_computed"), (300, "downlink_start")]
    (row,) = log["updates"]
    assert row["applied_t_us"] == 10300 and row["update_bits"] == 800 and row["ber_gap_after"] == 0.25


def test_updates_still_in_flight_are_logged_at_the_end(env, log):
    applied = []
    ad = Adaptation(env, log)
    link = Link(env, "downlink", 1e3, 0, [0])          # 800 bits take 0.8 s
    ad.start(0, _update(applied, env, bits=800), link=link)
    ad.start(0, _update(applied, env, compute_us=10**6))
    env.run(until=1000)
    ad.finish()
    assert applied == [] and [r["applied_t_us"] for r in log["updates"]] == [-1, -1]


def test_an_update_with_bits_needs_a_link(env, log):
    with pytest.raises(ValueError, match="needs a link"):
        Adaptation(env, log).start(0, _update([], env, bits=8))
