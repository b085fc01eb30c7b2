"""A UE on a flat channel, and the gNB's link state for it, for process tests without fading."""
from __future__ import annotations

import numpy as np
import simpy

from simulator.csi.report import CsiReporter
from simulator.link import Link
from simulator.link_adaptation.cqi import CqiMapper
from simulator.link_adaptation.olla import Olla
from simulator.link_adaptation.tables import bler_table
from simulator.mobility import Mobility
from simulator.processes.adaptation import Adaptation
from simulator.processes.context import RunContext, UeContext
from simulator.schema import CsiReportConfig, GnbConfig, StaticMobility
from simulator.ue import Ue, UeLink

NUM_PRBS = 12
SLOT_US = 500


class FlatChannel:
    """Unit gain on every subcarrier, one receive and one transmit antenna."""

    def port0_slot(self, slot):
        return np.ones((1, 12 * NUM_PRBS), np.complex64), np.ones(12 * NUM_PRBS)

    def cfr_slot(self, slot):
        return np.ones((1, 1, 12 * NUM_PRBS), np.complex64)


def ue_context(env, log, *, duration_us: int, num_harq: int = 16, predictor=None) -> tuple[RunContext, UeContext, list]:
    """(run context, UE 0's context on a 1 Mbit/s uplink without delay, the trace list) at 15 dB."""
    table = bler_table(1, NUM_PRBS, 2)
    ue = Ue(0, Mobility(StaticMobility(model="static")), FlatChannel(), np.full(duration_us // SLOT_US + 1, 15.0))
    link = UeLink(0, Olla(table, 0.1, 0.5), CqiMapper(table, 1), num_harq, 4)
    trace: list = []
    run = RunContext(env, log, Adaptation(env, log, trace), slot_us=SLOT_US, duration_us=duration_us, trace=trace)
    uplink = Link(env, "feedback", 1e6, 0, [0], trace=trace)
    reporter = CsiReporter(CsiReportConfig(), GnbConfig(), NUM_PRBS)
    return run, UeContext(ue, link, uplink, reporter, predictor=predictor, model_updates=simpy.Store(env)), trace
