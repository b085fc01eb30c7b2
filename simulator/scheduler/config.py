"""The scheduler's settings (``scheduler:`` in a scenario) and the checks that need the cell.

Field bounds are checked by pydantic when the config is built; :func:`check_fits` holds the rules
that need the carrier and the array, which the scenario schema calls with them.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from simulator.scheduler.prb_groups import rbg_sizes

# DMRS ports a PRB can carry orthogonally (38.211 Table 7.4.1.1.2-2: configuration type 2, two
# symbols): the most layers, hence co-scheduled one-layer UEs, one PRB can carry.
MAX_DMRS_PORTS = 12


class PfConfig(BaseModel):
    """Proportional fair: PRB group g goes to the UE with the largest
    ``rate_bps[u, g] ** rate_exponent / throughput_bps[u] ** throughput_exponent``; the past
    throughput is an exponential moving average with discount ``beta`` (Sionna SYS's
    ``PFSchedulerSUMIMO`` is exponents 1 and 1)."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    beta: float = Field(0.98, gt=0, lt=1, description="EMA discount of the past throughput: T <- beta T + "
                                                      "(1 - beta) R each slot (time constant 1 / (1 - beta) slots)")
    rate_exponent: float = Field(1.0, gt=0, le=10, description="Exponent of the achievable rate in the PF metric")
    throughput_exponent: float = Field(1.0, ge=0, le=10, description="Exponent of the past throughput in the PF "
                                                                     "metric: 0 = max rate, 1 = proportional "
                                                                     "fair, larger = closer to max-min")


class SchedulerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    kind: Literal["pf", "round_robin"] = Field("pf", description="pf: proportional fair; round_robin: PRB groups "
                                                                 "to the UEs in a fixed cyclic order")
    prb_group_prbs: int | None = Field(None, ge=1, le=16, description="PRBs per PRB group (the last group is "
                                                                      "shorter when this does not divide the "
                                                                      "carrier): one of 38.214 Table 5.1.2.2.1-1's "
                                                                      "two RBG sizes for the carrier; default "
                                                                      "its configuration 1 (52 PRBs: 4)")
    max_ues_per_prb: int = Field(1, ge=1, le=MAX_DMRS_PORTS, description="UEs co-scheduled on one PRB group "
                                                                         "(one layer each): 1 = single-user, > 1 "
                                                                         "= MU-MIMO with greedy PF user sets")
    mu_mcs: Literal["set_estimate", "su_cqi"] = Field(
        "set_estimate", description="MU-MIMO blocks' MCS (max_ues_per_prb > 1; a single-user block always takes its "
                          "CQI through OLLA). set_estimate: the "
                          "SINR the gNB expects of the UE in its co-scheduled sets (RZF on the held CSI) through a "
                          "second OLLA offset fed by the UE's MU blocks only, which also corrects the set rates the "
                          "greedy search expects. su_cqi: the UE's single-user CQI through its one OLLA offset "
                          "(OLLA alone corrects for the interference)")
    pf: PfConfig = Field(default_factory=PfConfig)


def check_fits(cfg: SchedulerConfig, num_prbs: int, num_gnb_ports: int,
               layers_per_ue: int = 1) -> list[tuple[str, str]]:
    """The (field, message) pairs for what ``cfg`` asks of a carrier of ``num_prbs`` PRBs and an
    array of ``num_gnb_ports`` ports, fields relative to ``cfg``; empty when it fits.

    - ``max_ues_per_prb``: the co-scheduled UEs' layers (``layers_per_ue`` each) cannot exceed the
      ports, the most streams a linear precoder separates.
    - ``prb_group_prbs``: one of the two RBG sizes 38.214 Table 5.1.2.2.1-1 gives for ``num_prbs``.
    """
    problems = []
    if cfg.max_ues_per_prb * layers_per_ue > num_gnb_ports:
        problems.append(("max_ues_per_prb", f"{cfg.max_ues_per_prb} UEs x {layers_per_ue} layer(s) per PRB need at "
                                            f"least as many gNB ports; the array has {num_gnb_ports}"))
    if cfg.prb_group_prbs is not None:
        allowed = sorted(set(rbg_sizes(num_prbs)))
        if cfg.prb_group_prbs not in allowed:
            problems.append(("prb_group_prbs", f"must be one of {allowed} for {num_prbs} PRBs (38.214 Table "
                                               f"5.1.2.2.1-1, configuration 1 or 2; got {cfg.prb_group_prbs})"))
    return problems
