"""pdsch with a scripted PHY: HARQ retransmissions, K1 feedback timing, HARQ-process exhaustion,
and a report arriving exactly at a slot boundary being used by that slot (exact traces)."""
from __future__ import annotations

from simulator.link import Message
from simulator.processes.csi_rs import Report
from simulator.processes.inbox import gnb_inbox_process
from simulator.processes.pdsch import PdschStats, pdsch_process
from tests.simulator.processes.stand_ins import ue_context


class _ScriptedPhy:
    """ACK unless (slot, round) is in ``nacks``."""

    def __init__(self, nacks):
        self.nacks, self.released = set(nacks), []

    def submit(self, tx):
        tx.ack = (tx.slot, tx.tx_round) not in self.nacks
        tx.sinr_eff_db = 10.0

    def resolve(self, tx):
        pass

    def release(self, ue, harq):
        self.released.append((ue, harq))


def _setup(env, log, nacks=(), num_harq=16, num_slots=8):
    run, ctx, trace = ue_context(env, log, duration_us=num_slots * 500, num_harq=num_harq)
    return run, ctx, _ScriptedPhy(nacks), trace


def test_retransmission_after_nack_and_k1_feedback(env, log):
    run, ctx, phy, trace = _setup(env, log, nacks={(1, 1)})
    stats = PdschStats()
    env.process(pdsch_process(run, [ctx], phy, k1_slots=2, num_slots=8, receiver="scripted", stats=stats))
    env.run()
    pdsch = [(t, harq, rnd) for t, kind, ue, harq, rnd in (e for e in trace if e[1] == "pdsch")]
    # slot 1's block is NACKed at 1500 us and retransmitted on the same HARQ process in the slot of 1500 us
    assert pdsch == [(0, 0, 1), (500, 1, 1), (1000, 2, 1), (1500, 1, 2), (2000, 3, 1), (2500, 4, 1),
                     (3000, 5, 1), (3500, 6, 1)]
    feedback = [(t, harq, ack) for t, kind, ue, harq, ack in (e for e in trace if e[1] == "harq_feedback")]
    assert feedback[:4] == [(1000, 0, True), (1500, 1, False), (2000, 2, True), (2500, 1, True)]
    assert [r["ack_t_us"] - r["t_us"] for r in log["slots"]] == [1000] * 8
    assert stats.transmissions == 8 and stats.first_tx == 7 and stats.first_tx_nack == 1


def test_no_transmission_while_every_harq_process_waits(env, log):
    run, ctx, phy, trace = _setup(env, log, num_harq=1)
    env.process(pdsch_process(run, [ctx], phy, k1_slots=2, num_slots=8, receiver="scripted", stats=PdschStats()))
    env.run()
    # one HARQ process: the next block waits for the ACK, 2 slots (1000 us) later
    assert [e[0] for e in trace if e[1] == "pdsch"] == [0, 1000, 2000, 3000]


def test_a_report_arriving_at_a_slot_boundary_is_used_by_that_slot(env, log):
    """The report's last bit arrives at 1000 us; the slot of 1000 us uses its CQI even though the
    slot's tick was scheduled before the report was sent."""
    run, ctx, phy, trace = _setup(env, log)
    env.process(gnb_inbox_process(run, ctx))

    def ue():
        yield env.timeout(600)
        ctx.uplink.send(Message("report", 0, 400, Report(9, None, env.event()), created_us=600))   # 400 us on the pipe

    env.process(ue())
    env.process(pdsch_process(run, [ctx], phy, k1_slots=2, num_slots=4, receiver="scripted", stats=PdschStats()))
    env.run()
    assert [r["cqi_used"] for r in sorted(log["slots"], key=lambda r: r["t_us"])] == [0, 0, 9, 9]
