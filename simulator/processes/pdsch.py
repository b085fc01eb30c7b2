"""pdsch: full-buffer downlink, one transport block per slot per scheduled UE, HARQ with K1 feedback delay.

Each slot, in this order: HARQ feedback due now is applied (OLLA, retransmission queue), then
the UEs transmit: the oldest pending retransmission, else a new transport block on a free HARQ
process with the MCS from the last CQI and the OLLA offset. ACK/NACK reaches the gNB ``k1_slots``
later.

Without a scheduler every UE transmits on the whole carrier every slot (N independent links).
With one (``Scheduling``), the slot's PRB groups are allocated first: each UE's rate on a group is
what its next block's MCS would carry there (the wideband CQI through OLLA: the same on every
group), a pending retransmission asks for as many groups as its block had, and a UE with no free
HARQ process and nothing to retransmit asks for nothing. A UE's block then spans its groups: the
TBS of that many PRBs (a retransmission keeps its block's), the SINR of their subcarriers, the
BLER table of that allocation. PF's past throughput counts the TBS of each UE's new block per slot.
With ``max_ues_per_prb`` > 1 (``Scheduling.co``, ``simulator/processes/co_scheduling.py``) PF adds
UEs to a group while the expected rates of the set (RZF on the held CSI) raise its PF sum, and each
block's SINR is computed with the co-scheduled streams as interference on the true channels; a
co-scheduled block's MCS follows ``scheduler.mu_mcs`` (``set_estimate``: the expected SINR through the
UE's MU OLLA loop, ``UeLink.olla_mu``, which its MU first transmissions feed).

A slot starts after every other event of its instant (``slot_tick``): a CQI report whose last bit
arrives exactly at a slot boundary is used by that slot, whatever the order the events were
scheduled in.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import simpy

from simulator.phy.base import Transmission
from simulator.processes.context import RunContext, UeContext
from simulator.scheduler.prb_groups import group_subcarriers

# SimPy orders the events of one instant by priority (URGENT 0, NORMAL 1), then by scheduling
# order; slot ticks come after both.
_AFTER_NORMAL = 2


def slot_tick(env: simpy.Environment, delay_us: int) -> simpy.Event:
    """A timeout of ``delay_us`` that fires after every other event of the instant it lands on."""
    ev = simpy.Event(env)
    ev._ok, ev._value = True, None          # triggered now, processed at now + delay_us
    env.schedule(ev, _AFTER_NORMAL, delay_us)
    return ev


@dataclass
class Scheduling:
    """What the scheduled path needs: the scheduler (``simulator.scheduler``), its PRB groups, the
    BLER table of an allocation (PRBs, layers) -> BlerTable, and the data REs of one PRB."""
    scheduler: object
    group_sizes_prbs: np.ndarray
    table_for: Callable[[int, int], object]
    data_re_per_prb: int
    co: object | None = None      # MU-MIMO (``simulator.processes.co_scheduling.CoScheduling``), or None

    def __post_init__(self):
        self._group_sc = group_subcarriers(self.group_sizes_prbs)

    def subcarriers(self, groups: np.ndarray) -> np.ndarray:
        return np.concatenate([self._group_sc[g] for g in groups])


@dataclass
class PdschStats:
    """Running totals for the end-of-run summary."""
    delivered_bits: int = 0
    first_tx: int = 0
    first_tx_nack: int = 0
    tbs_finished: int = 0
    tbs_failed: int = 0
    mcs_sum: int = 0
    transmissions: int = 0
    delivered_bits_per_ue: dict = field(default_factory=dict)


def pdsch_process(run: RunContext, ues: list[UeContext], phy, *, k1_slots: int, num_slots: int, receiver: str,
                  stats: PdschStats, on_slot: Callable[[int], None] | None = None,
                  scheduling: Scheduling | None = None):
    env, slot_us, trace, rec = run.env, run.slot_us, run.trace, run.rec
    pending: deque = deque()           # (feedback_due_us, Transmission, UeLink), in due order
    k1_us = k1_slots * slot_us
    last_rate_bps = np.zeros(len(ues))
    for slot in range(num_slots):
        t = env.now
        while pending and pending[0][0] <= t:
            _feedback(*pending.popleft(), phy, rec, stats, receiver, trace)
        if scheduling is not None:
            last_rate_bps = _scheduled_slot(run, ues, phy, scheduling, slot, t, last_rate_bps, pending, k1_us)
            if on_slot is not None:
                on_slot(slot)
            yield slot_tick(env, slot_us)
            continue
        for ctx in ues:
            ue, link = ctx.ue, ctx.link
            precoder, layers = link.precoder, link.layers
            if link.retx:
                prev = link.retx.popleft()
                harq, rnd, mcs = prev.harq_process, prev.tx_round + 1, prev.mcs
                if prev.layers != layers:     # a block keeps its layers: its precoder when the rank has changed
                    precoder, layers = prev.precoder, prev.layers
            elif link.free_harq:
                harq, rnd, mcs = link.free_harq.popleft(), 1, link.new_tb_mcs()
            else:
                continue                # every HARQ process is waiting for feedback
            h, gain = ue.channel_through(slot, precoder)           # precoded with what the gNB holds
            tx = Transmission(ue.id, slot, t, harq, rnd, mcs, int(link.olla.tables[layers].tbs_bits[mcs]),
                              float(ue.snr_db[slot]), h, gain=gain, layers=layers, precoder=precoder)
            tx.precoding_gain_db = _precoding_gain_db(ue, slot, gain) if precoder is not None else 0.0
            _submit(run, phy, tx, link, pending, t + k1_us)
        if on_slot is not None:
            on_slot(slot)
        yield slot_tick(env, slot_us)
    while pending:                      # feedback of the last k1 slots
        due = pending[0][0]
        if due > env.now:
            yield slot_tick(env, due - env.now)
        _feedback(*pending.popleft(), phy, rec, stats, receiver, trace)


def _scheduled_slot(run: RunContext, ues: list[UeContext], phy, sch: Scheduling, slot: int, t: int,
                    last_rate_bps: np.ndarray, pending: deque, k1_us: int) -> np.ndarray:
    """One slot with a scheduler (module docstring); returns each UE's new-block rate (bit/s) for PF."""
    slot_s = run.slot_us * 1e-6
    rate_per_prb = np.zeros(len(ues))
    retx_groups = np.zeros(len(ues), np.int64)
    for i, ctx in enumerate(ues):
        link = ctx.link
        if link.retx:
            retx_groups[i] = len(link.retx[0].groups)
        if link.retx or link.free_harq:
            layers = link.layers
            rate_per_prb[i] = link.olla.tables[layers].se[link.new_tb_mcs()] * layers * sch.data_re_per_prb / slot_s
    rate = rate_per_prb[:, None] * sch.group_sizes_prbs[None, :]
    if sch.co is not None:
        sch.co.begin_slot()
    alloc = sch.scheduler.schedule(rate, retx_groups, last_rate_bps)
    mu = sch.co.slot_sinr(slot, alloc.ues) if sch.co is not None else None
    expected_db = sch.co.expected_sinr_db(alloc.ues) if sch.co is not None and sch.co.mu_olla else {}
    new_rate = np.zeros(len(ues))
    for i, ctx in enumerate(ues):
        if alloc.prbs[i] == 0:
            continue
        ue, link = ctx.ue, ctx.link
        groups = alloc.groups_of(i)
        precoder, layers = link.precoder, link.layers
        if alloc.retransmission[i]:
            prev = link.retx.popleft()
            harq, rnd, mcs, tbs = prev.harq_process, prev.tx_round + 1, prev.mcs, prev.tbs_bits
            if prev.layers != layers:
                precoder, layers = prev.precoder, prev.layers
            table = prev.table
        else:
            harq, rnd = link.free_harq.popleft(), 1
            # a co-scheduled block under scheduler.mu_mcs set_estimate: the MU loop at the set's estimate
            mcs = link.olla_mu.select_mcs(expected_db[i]) if i in expected_db else link.new_tb_mcs()
            table = sch.table_for(int(alloc.prbs[i]), layers)
            tbs = int(table.tbs_bits[mcs])
            new_rate[i] = tbs / slot_s
        # MU-MIMO: the SINR and gain come from the co-scheduled set, not from the single-user stream
        h, gain = ue.channel_through(slot, precoder) if mu is None else (None, None)
        tx = Transmission(ue.id, slot, t, harq, rnd, mcs, tbs, float(ue.snr_db[slot]), h, gain=gain, layers=layers,
                          precoder=precoder, sc=sch.subcarriers(groups), table=table, groups=tuple(int(g) for g in groups))
        if mu is None:
            tx.precoding_gain_db = _precoding_gain_db(ue, slot, gain) if precoder is not None else 0.0
        else:
            tx.sinr_re, tx.precoding_gain_db, co, tx.h, tx.h_int = mu[i]
            tx.co_scheduled = tuple(sorted(ues[j].id for j in co))
        _submit(run, phy, tx, link, pending, t + k1_us)
    return new_rate


def _submit(run: RunContext, phy, tx: Transmission, link, pending: deque, due_us: int) -> None:
    """Hand the transmission to the PHY with the gNB's link state at sending; its feedback is due at due_us."""
    tx.olla_offset_db = link.olla_of(bool(tx.co_scheduled)).offset_db
    tx.cqi_used = link.cqi
    phy.submit(tx)
    pending.append((due_us, tx, link))
    if run.trace is not None:
        run.trace.append((tx.t_us, "pdsch", tx.ue, tx.harq_process, tx.tx_round))


def _precoding_gain_db(ue, slot: int, gain) -> float:
    """Mean received power of the precoded stream (two layers: the mean of the two) over that of one gNB
    antenna, averaged over them (dB)."""
    return ue.channel.gain_over_antenna_db(slot, float(gain.mean()))


def _feedback(due_us: int, tx: Transmission, link, phy, rec, stats: PdschStats, receiver: str, trace) -> None:
    phy.resolve(tx)
    ack = bool(tx.ack)
    if trace is not None:
        trace.append((due_us, "harq_feedback", tx.ue, tx.harq_process, ack))
    if tx.tx_round == 1:
        # OLLA runs on first transmissions: it steers the first-transmission BLER to its target
        link.olla_of(bool(tx.co_scheduled)).feedback(ack)
        stats.first_tx += 1
        stats.first_tx_nack += not ack
        stats.mcs_sum += tx.mcs
    link.pdsch_sinr_db.append(tx.sinr_eff_db)
    if ack:
        link.n_ack += 1
    else:
        link.n_nack += 1
    stats.transmissions += 1
    if ack or tx.tx_round >= link.max_transmissions:
        stats.tbs_finished += 1
        stats.tbs_failed += not ack
        phy.release(tx.ue, tx.harq_process)
        link.free_harq.append(tx.harq_process)
    else:
        link.retx.append(tx)
    delivered = tx.tbs_bits if ack else 0
    stats.delivered_bits += delivered
    stats.delivered_bits_per_ue[tx.ue] = stats.delivered_bits_per_ue.get(tx.ue, 0) + delivered
    rec.append("slots", {
        "t_us": tx.t_us, "ue": tx.ue, "slot": tx.slot, "harq_process": tx.harq_process, "tx_round": tx.tx_round,
        "mcs": tx.mcs, "tbs_bits": tx.tbs_bits, "snr_db": tx.snr_db, "sinr_eff_db": tx.sinr_eff_db,
        "olla_offset_db": tx.olla_offset_db, "cqi_used": tx.cqi_used, "ack": ack, "ack_t_us": due_us,
        "delivered_bits": delivered, "receiver": receiver, "ber": tx.ber,
        "ber_genie": tx.ber_genie, "ber_ls": tx.ber_ls, "precoding_gain_db": tx.precoding_gain_db,
        "layers": tx.layers, "prb_groups": list(tx.groups) if tx.groups else None,
        "co_scheduled": list(tx.co_scheduled) if tx.groups else None,
    })
