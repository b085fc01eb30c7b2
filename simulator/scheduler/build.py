"""The scheduler a config asks for, on the PRB groups of the carrier."""
from __future__ import annotations

from simulator.scheduler.base import Scheduler, SetRateFn
from simulator.scheduler.config import SchedulerConfig
from simulator.scheduler.pf import PfScheduler
from simulator.scheduler.prb_groups import group_sizes_prbs
from simulator.scheduler.round_robin import RoundRobinScheduler


def build_scheduler(cfg: SchedulerConfig, num_ues: int, num_prbs: int,
                    set_rate_fn: SetRateFn | None = None) -> Scheduler:
    """A ``cfg.kind`` scheduler of ``num_ues`` UEs over the PRB groups of a ``num_prbs`` carrier
    (``set_rate_fn``: the co-scheduled rates pf needs when ``cfg.max_ues_per_prb`` > 1)."""
    sizes = group_sizes_prbs(num_prbs, cfg.prb_group_prbs)
    if cfg.kind == "round_robin":
        return RoundRobinScheduler(num_ues, sizes, cfg.max_ues_per_prb)
    return PfScheduler(cfg.pf, num_ues, sizes, cfg.max_ues_per_prb, set_rate_fn)
