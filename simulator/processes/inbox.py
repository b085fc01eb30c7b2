"""The receiving ends of the links: processes that take each message from their inbox Store
when its last bit has arrived.

- gNB (uplink, one process per UE): a report sets the CQI and the precoder the scheduler uses; with neural
  CSI feedback it is decoded with the decoder side of the version it was encoded for, and a neural
  report's precoder is derived from that reconstruction; an update (a CSI decoder update) is applied.
- UE (downlink, one process per UE): an update (a receiver update) is applied.
"""
from __future__ import annotations

import math

import simpy

from simulator.processes.context import RunContext, UeContext


def gnb_inbox_process(run: RunContext, ctx: UeContext):
    inbox = ctx.uplink.inbox(ctx.id)
    while True:
        msg = yield inbox.get()
        if msg.kind == "report":
            report = msg.payload
            precoder, nmse_db = report.precoder, math.nan
            if report.csi is not None:
                nmse_db, decoded = ctx.csi.decode(report.csi, report.rank)
                precoder = decoded or precoder                 # neural: from the gNB's reconstruction
            ctx.link.receive_cqi(report.cqi, precoder)
            report.decoded.succeed(nmse_db)
        else:
            run.adaptation.apply(msg.payload)


def ue_inbox_process(run: RunContext, inbox: simpy.Store):
    while True:
        msg = yield inbox.get()
        run.adaptation.apply(msg.payload)
