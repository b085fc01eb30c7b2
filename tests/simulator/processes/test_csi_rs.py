"""csi_rs with a stand-in predictor: occasions, reports on the uplink, period rows, and the timing
of LightTune-style updates (taken at the first CSI-RS occasion after their compute time)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from models.base import Update
from simulator.processes.csi_rs import CsiRsSetup, csi_rs_process
from simulator.processes.inbox import gnb_inbox_process
from tests.simulator.processes.stand_ins import ue_context


class _Predictor:
    """Predicts BLER 0.5; every observed period starts an update of ``compute_us``."""

    def __init__(self, env, compute_us):
        self.env, self.compute_us, self.version, self.applied = env, compute_us, 0, []

    def predict(self, features, cqi):
        return np.full(len(np.atleast_1d(cqi)), 0.5, np.float32)

    def observe(self, features, cqi, bler_observed, bler_predicted=None):
        def apply():
            self.version += 1
            self.applied.append(self.env.now)
            return {}

        return Update(model="stand_in", trigger="always", trigger_value=abs(bler_predicted - bler_observed),
                      compute_us=self.compute_us, apply=apply)


def _run(env, log, compute_us, duration_us=35000, period_us=10000):
    pred = _Predictor(env, compute_us)
    run, ctx, trace = ue_context(env, log, duration_us=duration_us, predictor=pred)
    link = ctx.link
    setup = CsiRsSetup(period_us, 2000, 4, 30e3, 12, 2)

    def feedback():                     # one ACK and one NACK a ms, as the PDSCH would report
        while True:
            yield env.timeout(1000)
            link.n_ack += 1
            link.n_nack += 1

    env.process(feedback())
    env.process(csi_rs_process(run, ctx, setup, np.random.default_rng(0), np.random.default_rng(1)))
    env.process(gnb_inbox_process(run, ctx))
    env.run(until=duration_us + 1)
    run.adaptation.finish()
    return pred, link, trace


@pytest.mark.parametrize("compute_us, applied", [(2000, [20000, 30000]), (15000, [30000])])
def test_updates_take_effect_at_the_first_occasion_after_their_compute_time(env, log, compute_us, applied):
    pred, link, trace = _run(env, log, compute_us)
    assert [t for t, kind, *_ in trace if kind == "csi_rs"] == [0, 10000, 20000, 30000]
    assert pred.applied == applied
    rows = log["updates"]
    # one row per update: made when a period closes, applied at an occasion, or -1 at the end
    assert [r["t_us"] for r in rows] == [10000, 20000, 30000, 35000]
    assert [r["applied_t_us"] for r in rows if r["applied_t_us"] >= 0] == applied
    assert all(r["compute_us"] == compute_us for r in rows)
    assert sum(r["applied_t_us"] == -1 for r in rows) == len(rows) - len(applied)


def test_periods_rows_and_reports(env, log):
    pred, link, trace = _run(env, log, 2000)
    periods = log["periods"]
    assert [(p["t_us"], p["t_end_us"]) for p in periods] == [(0, 10000), (10000, 20000), (20000, 30000),
                                                               (30000, 35000)]
    # feedback counted in the period it reaches the gNB in (an occasion comes first at its instant:
    # it was scheduled a period earlier); the report (4 bits at 1 Mbit/s: 4 us) reaches the gNB 2 ms + 4 us later
    assert [p["n_ack"] + p["n_nack"] for p in periods] == [18, 20, 20, 10]
    assert [p["report_arrival_t_us"] for p in periods] == [2004, 12004, 22004, 32004]
    assert all(p["bler_observed"] == 0.5 and p["bler_predicted"] == 0.5 for p in periods)
    assert link.cqi == periods[-1]["cqi_reported"] > 0 and math.isnan(periods[0]["csi_nmse_db"])
