"""mobility: moves every UE on its closed-form path, accumulating distance travelled."""
from __future__ import annotations

import simpy


def mobility_process(env: simpy.Environment, ues: list, update_us: int, duration_us: int):
    """Every ``update_us``: ``ue.position_m`` and ``ue.distance_m`` at ``env.now``."""
    while env.now < duration_us:
        t_s = env.now * 1e-6
        for ue in ues:
            ue.position_m = ue.mobility.position_m([t_s])[0]
            ue.distance_m = float(ue.mobility.distance_m([t_s])[0])
        yield env.timeout(update_us)
