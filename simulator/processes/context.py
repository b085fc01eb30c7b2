"""The small typed contexts processes receive instead of long keyword lists."""
from __future__ import annotations

from dataclasses import dataclass, field

import simpy

from models.base import BlerPredictor
from simulator.csi.report import CsiReporter
from simulator.link import Link
from simulator.processes.adaptation import Adaptation
from simulator.recorder import Recorder
from simulator.ue import Ue, UeLink


@dataclass(frozen=True)
class RunContext:
    """What every process of a run shares."""
    env: simpy.Environment
    rec: Recorder
    adaptation: Adaptation
    slot_us: int
    duration_us: int
    trace: list | None = None


@dataclass(eq=False)
class UeContext:
    """One UE, the gNB's view of it (``link``), the links between them, what the UE reports
    (``reporter``), and the UE's models.

    ``model_updates``: the UE's local updates (LightTune) waiting for the next CSI-RS occasion.
    """
    ue: Ue
    link: UeLink
    uplink: Link
    reporter: CsiReporter                 # or, for neural reports, the UE's CsiFeedback (same ``measure``)
    predictor: BlerPredictor | None = None
    csi: object | None = None             # simulator.processes.csi_feedback.CsiFeedback
    model_updates: simpy.Store | None = field(default=None, repr=False)

    @property
    def id(self) -> int:
        return self.ue.id
