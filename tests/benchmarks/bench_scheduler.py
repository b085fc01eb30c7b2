"""Scheduler cost per slot: 1, 4, 16, 64 UEs x 13 PRB groups (52 PRBs of 4), one thread.

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_scheduler.py
Requirement (issue 13, item 6): the 8-UE cell at >= 2,000 slots/s, i.e. 500 us per slot for all
its work, so the scheduler must stay at tens of microseconds. Figures: PF single-user, PF
multi-user (max_ues_per_prb 4, a set-rate callback of one numpy gather, its cost included),
round robin, and Sionna SYS's PFSchedulerSUMIMO called eagerly and inside a tf.function (with the
numpy -> tensor -> numpy conversions a slot needs), which is why pf.py is numpy. Each figure is
``bench_precoding.best_us`` (the best of 5 means of 40 calls), with the load average before it.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from simulator.scheduler.config import PfConfig
from simulator.scheduler.pf import PfScheduler
from simulator.scheduler.round_robin import RoundRobinScheduler
from simulator.threads import limit_threads
from tests.benchmarks.bench_precoding import best_us

pytestmark = pytest.mark.benchmark
NUM_GROUPS = 13


@pytest.mark.parametrize("num_ues", [1, 4, 16, 64])
def test_scheduler_cost_per_slot(num_ues):
    limit_threads(1)
    import tensorflow as tf
    from sionna.sys import PFSchedulerSUMIMO

    rng = np.random.default_rng(num_ues)
    rate = rng.uniform(1e5, 1e7, size=(num_ues, NUM_GROUPS))
    last = rng.uniform(0, 1e7, size=num_ues)
    no_retx = np.zeros(num_ues, dtype=np.int64)
    sizes = np.full(NUM_GROUPS, 4)
    co_scheduled = lambda ue_sets, groups: np.where(ue_sets >= 0, 0.7 * rate[ue_sets, groups[:, None]], 0.0)
    su = PfScheduler(PfConfig(), num_ues, sizes)
    mu = PfScheduler(PfConfig(), num_ues, sizes, max_ues_per_prb=4, set_rate_fn=co_scheduled)
    rr = RoundRobinScheduler(num_ues, sizes)
    sionna = PFSchedulerSUMIMO(num_ues, NUM_GROUPS, 1)
    sionna_fn = tf.function(lambda r_last, r: sionna(r_last, r))
    load = os.getloadavg()[0]
    su_us = best_us(lambda: su.schedule(rate, no_retx, last))
    mu_us = best_us(lambda: mu.schedule(rate, no_retx, last))
    rr_us = best_us(lambda: rr.schedule(rate, no_retx, last))
    eager_us = best_us(lambda: sionna(tf.constant(last), tf.constant(rate.T[None])).numpy())
    graph_us = best_us(lambda: sionna_fn(tf.constant(last), tf.constant(rate.T[None])).numpy())
    print(f"\n[bench] scheduler {num_ues} UEs x {NUM_GROUPS} groups, 1 thread (load {load:.2f}): "
          f"pf SU {su_us:.1f} us, pf MU (4 per PRB) {mu_us:.1f} us, round robin {rr_us:.1f} us; "
          f"Sionna PFSchedulerSUMIMO eager {eager_us:,.0f} us, tf.function {graph_us:,.0f} us")
    if num_ues <= 16:
        assert su_us < 100.0 and rr_us < 100.0
