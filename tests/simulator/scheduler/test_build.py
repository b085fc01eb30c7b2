"""build_scheduler: the kind and the PRB groups a config asks for."""
from __future__ import annotations

import numpy as np

from simulator.scheduler.build import build_scheduler
from simulator.scheduler.config import SchedulerConfig
from simulator.scheduler.pf import PfScheduler
from simulator.scheduler.round_robin import RoundRobinScheduler


def test_kind_and_groups_follow_the_config():
    rr = build_scheduler(SchedulerConfig(kind="round_robin", prb_group_prbs=8), num_ues=3, num_prbs=52)
    assert isinstance(rr, RoundRobinScheduler) and rr.group_sizes_prbs.tolist() == [8] * 6 + [4]
    pf = build_scheduler(SchedulerConfig(max_ues_per_prb=2, pf={"beta": 0.9}), num_ues=3, num_prbs=52,
                         set_rate_fn=lambda ue_sets, groups: np.ones(ue_sets.shape))
    assert isinstance(pf, PfScheduler) and pf.group_sizes_prbs.tolist() == [4] * 13 and pf.cfg.beta == 0.9
    alloc = pf.schedule(np.ones((3, 13)), np.zeros(3, dtype=np.int64), np.zeros(3))
    assert alloc.ues.shape == (13, 2) and alloc.prbs.sum() == 2 * 52
