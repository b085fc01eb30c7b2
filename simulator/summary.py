"""The end-of-run summary: throughput, BLERs, mean MCS and the event loop's speed."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.processes.pdsch import PdschStats
from simulator.schema import Scenario


@dataclass
class RunSummary:
    duration_s: float
    throughput_mbps: float
    first_tx_bler: float
    residual_bler: float
    mean_mcs: float
    transmissions: int
    wall_s: float
    setup_s: float         # channels, tables, PHY build
    slots_per_s: float     # UE-slots per second of the event loop (setup excluded)
    cell_throughput_mbps: float = 0.0   # all UEs together
    jain_index: float = 1.0             # (sum x)^2 / (n sum x^2) of the UEs' throughputs (1: equal)

    def format(self) -> str:
        cell = (f"cell {self.cell_throughput_mbps:.2f} Mbit/s, Jain {self.jain_index:.3f} | "
                if self.cell_throughput_mbps != self.throughput_mbps else "")
        return (f"throughput {self.throughput_mbps:.2f} Mbit/s per UE | {cell}first-tx BLER {self.first_tx_bler:.3f} | "
                f"residual BLER {self.residual_bler:.4f} | mean MCS {self.mean_mcs:.2f} | "
                f"{self.transmissions} transmissions in {self.wall_s:.1f} s wall "
                f"({self.setup_s:.1f} s setup, {self.slots_per_s:.0f} slots/s)")

    @classmethod
    def of(cls, stats: PdschStats, sc: Scenario, num_ues: int, *, wall_s: float, loop_s: float) -> "RunSummary":
        per_ue = np.array([stats.delivered_bits_per_ue.get(u.id, 0) for u in sc.ues], np.float64)
        jain = float(per_ue.sum() ** 2 / (len(per_ue) * (per_ue ** 2).sum())) if per_ue.any() else 1.0
        return cls(
            cell_throughput_mbps=stats.delivered_bits / sc.duration_s / 1e6, jain_index=jain,
            duration_s=sc.duration_s,
            throughput_mbps=stats.delivered_bits / sc.duration_s / 1e6 / num_ues,
            first_tx_bler=stats.first_tx_nack / max(stats.first_tx, 1),
            residual_bler=stats.tbs_failed / max(stats.tbs_finished, 1),
            mean_mcs=stats.mcs_sum / max(stats.first_tx, 1),
            transmissions=stats.transmissions, wall_s=wall_s, setup_s=wall_s - loop_s,
            slots_per_s=sc.num_slots * num_ues / max(loop_s, 1e-9))
