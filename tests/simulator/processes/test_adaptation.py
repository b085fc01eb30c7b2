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


def test_an_offloaded_job_is_applied_at_its_modelled_time_whatever_the_wall_time(env, log):
    """The worker thread takes 0.3 s of wall time; the loop waits for it at t = 300 us and applies it
    then, as if it had been computed in place. A job started later but computed first (a short
    one) is applied at its own time too: the rows follow the simulated clock."""
    import threading
    import time

    applied, threads = [], []
    ad = Adaptation(env, log)

    def slow():
        threads.append(threading.current_thread().name)
        time.sleep(0.3)
        return _update(applied, env)

    def trigger():
        ad.start(0, ad.offload(slow, 300))
        yield env.timeout(100)
        ad.start(1, ad.offload(lambda: _update(applied, env, compute_us=50), 50))

    env.process(trigger())
    env.run()
    ad.finish()
    assert applied == [150, 300]
    assert [(r["ue"], r["applied_t_us"]) for r in log["updates"]] == [(1, 150), (0, 300)]
    assert threads and threads[0] != threading.current_thread().name


def test_an_offloaded_job_must_take_the_compute_time_it_announced(env, log):
    ad = Adaptation(env, log)
    ad.start(0, ad.offload(lambda: _update([], env, compute_us=300), 200))
    with pytest.raises(RuntimeError, match="compute_us 200 but its update says 300"):
        env.run()
    ad.close()


def test_an_offloaded_job_still_computing_at_the_end_is_logged(env, log):
    ad = Adaptation(env, log)
    ad.start(0, ad.offload(lambda: _update([], env, compute_us=10**6), 10**6))
    env.run(until=1000)
    ad.finish()
    (row,) = log["updates"]
    assert row["applied_t_us"] == -1 and row["compute_us"] == 10**6 and row["loss_before"] == 2.0
