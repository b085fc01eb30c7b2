"""A scheduler sharing the carrier in the event loop (one UE per PRB group): airtime, TBS of the
allocation, retransmissions, the cell summary and bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.engine import Simulation
from simulator.link_adaptation.tables import bler_table
from simulator.loader import ConfigError
from simulator.scheduler.prb_groups import group_sizes_prbs


def _cell(make_scenario, kind: str, num_ues: int = 4, **extra):
    ues = [{"id": u, "mobility": {"model": "linear", "speed_kmh": 30, "start_m": [0, 10.0 * u, 1.5]}}
           for u in range(num_ues)]
    return make_scenario({"duration_s": 1.0, "scheduler": {"kind": kind}, "ues": ues, **extra})


def _run(sc, out):
    summary = Simulation(sc, out).run()
    return summary, pd.read_parquet(out / "slots.parquet")


def test_round_robin_gives_every_ue_the_same_prb_groups_and_the_allocations_tbs(make_scenario, tmp_path):
    sc = _cell(make_scenario, "round_robin")
    summary, slots = _run(sc, tmp_path / "rr")
    groups = slots.groupby("ue").prb_groups.apply(lambda g: sum(len(x) for x in g))
    # 12 PRBs in groups of 2 (38.214 configuration 1), 6 groups a slot over 4 UEs, all used; the
    # retransmissions (~10 % of blocks) go first on the groups they need, which moves the cyclic order
    # by a few groups: equal within 1 % (the scheduler alone is exact: tests/simulator/scheduler/)
    sizes = group_sizes_prbs(12, None)
    assert groups.sum() == len(sizes) * sc.num_slots
    assert (groups - groups.mean()).abs().max() < 0.01 * groups.mean(), groups
    # no group is given twice in a slot
    per_slot = slots.groupby("slot").prb_groups.apply(lambda g: np.concatenate(list(g)))
    assert all(len(set(x)) == len(x) for x in per_slot)
    # a new block's TBS is that of its PRBs; a retransmission keeps its block's TBS and group count
    first = slots[slots.tx_round == 1]
    prbs = first.prb_groups.apply(lambda g: int(sizes[list(g)].sum()))
    tbs = [int(bler_table(1, n, 2).tbs_bits[m]) for n, m in zip(prbs, first.mcs)]
    assert (first.tbs_bits.values == tbs).all()
    retx = slots[slots.tx_round > 1]
    assert len(retx) > 0
    for r in retx.itertuples():
        orig = slots[(slots.ue == r.ue) & (slots.harq_process == r.harq_process) & (slots.tx_round == 1)
                     & (slots.t_us < r.t_us)].iloc[-1]
        assert r.tbs_bits == orig.tbs_bits and len(r.prb_groups) == len(orig.prb_groups)
    # the summary: the cell is every UE's delivered bits, Jain's index of the per-UE throughputs
    per_ue = slots.groupby("ue").delivered_bits.sum().to_numpy(float)
    assert summary.cell_throughput_mbps == pytest.approx(per_ue.sum() / sc.duration_s / 1e6)
    assert summary.jain_index == pytest.approx(per_ue.sum() ** 2 / (len(per_ue) * (per_ue ** 2).sum()))


def test_pf_on_statistically_equal_ues_shares_the_airtime_and_beats_round_robin(make_scenario, tmp_path):
    """Equal SNR and speed, independent fading: PF shares the PRB-group-slots within +-5 % and, by
    serving each UE near its fading peaks, carries more than round robin on the same channels."""
    pf_summary, pf = _run(_cell(make_scenario, "pf"), tmp_path / "pf")
    rr_summary, _ = _run(_cell(make_scenario, "round_robin"), tmp_path / "rr")
    share = pf.groupby("ue").prb_groups.apply(lambda g: sum(len(x) for x in g))
    share = share / share.sum()
    assert (share.sub(0.25).abs() < 0.05 * 0.25 * 4).all() and len(share) == 4, share   # within 5 % of the total
    assert pf_summary.cell_throughput_mbps > rr_summary.cell_throughput_mbps
    assert pf_summary.jain_index > 0.9


def test_bad_scheduler_inputs_name_the_field(make_scenario):
    with pytest.raises(ConfigError, match=r"scheduler.max_ues_per_prb: 2 UEs x 1 layer\(s\) per PRB need"):
        _cell(make_scenario, "pf", **{"scheduler": {"kind": "pf", "max_ues_per_prb": 2}})
    with pytest.raises(ConfigError, match=r"scheduler.prb_group_prbs: must be one of \[2, 4\] for 12 PRBs"):
        _cell(make_scenario, "pf", **{"scheduler": {"kind": "pf", "prb_group_prbs": 3}})
    with pytest.raises(ConfigError, match=r"scheduler.prb_group_prbs: link_level retransmits a block on as many PRBs "
                                          r"as it had: the PRB groups must be of one size \(carrier.num_prbs 11 gives "
                                          r"\[1, 2\]\)"):
        _cell(make_scenario, "pf", **{"phy.backend": "link_level", "carrier.num_prbs": 11})
    _cell(make_scenario, "pf", **{"phy.backend": "link_level"})                    # 12 PRBs in groups of 2: fine
    with pytest.raises(ConfigError, match=r"scheduler.pf.beta"):
        _cell(make_scenario, "pf", **{"scheduler": {"kind": "pf", "pf": {"beta": 1.5}}})


def _mu_cell(make_scenario, max_ues: int, **extra):
    """UMi (each UE its own scattering geometry: CDL would give every UE the same clusters), a 2x4
    array, 12 PRBs in groups of 2 = the precoding subbands, ideal CSI, four spread UEs."""
    starts = [[60, 0, 1.5], [0, 80, 1.5], [-60, 40, 1.5], [40, -100, 1.5]]
    ues = [{"id": u, "mobility": {"model": "linear", "speed_kmh": 3, "start_m": s}} for u, s in enumerate(starts)]
    return make_scenario({"duration_s": 0.5, "ues": ues, "channel": {"model": "umi"}, "snr": {"model": "fixed",
                          "snr_db": 20}, "gnb": {"antenna_rows": 2, "antenna_cols": 4},
                          "csi_rs.report": {"kind": "ideal", "subband_prbs": 2},
                          "scheduler": {"kind": "pf", "max_ues_per_prb": max_ues}, **extra})


def test_mu_mimo_co_schedules_up_to_the_limit_and_carries_more_than_one_ue_per_group(make_scenario, tmp_path):
    su_summary, _ = _run(_mu_cell(make_scenario, 1), tmp_path / "su")
    mu_summary, mu = _run(_mu_cell(make_scenario, 2), tmp_path / "mu")
    # per slot and group at most 2 UEs; co-scheduling is symmetric and matches the shared groups
    for _, slot in mu.groupby("slot"):
        owners: dict[int, list[int]] = {}
        for r in slot.itertuples():
            for g in r.prb_groups:
                owners.setdefault(int(g), []).append(int(r.ue))
        assert all(len(v) <= 2 for v in owners.values())
        for r in slot.itertuples():
            shared = {u for g in r.prb_groups for u in owners[int(g)] if u != r.ue}
            assert set(r.co_scheduled) == shared
    assert (mu.co_scheduled.apply(len) > 0).mean() > 0.3                # MU is used
    assert mu_summary.cell_throughput_mbps > 1.1 * su_summary.cell_throughput_mbps
    assert mu_summary.first_tx_bler < 0.2                                # OLLA corrects the single-user CQIs


def test_mu_mimo_needs_groups_on_the_subbands_and_one_layer(make_scenario):
    with pytest.raises(ConfigError, match=r"scheduler.prb_group_prbs: MU-MIMO precodes each PRB group with the "
                                          r"reports' subband: the groups \(2 PRBs\) must be csi_rs.report.subband_prbs"):
        _mu_cell(make_scenario, 2, **{"csi_rs.report": {"kind": "ideal", "subband_prbs": 4}})
    with pytest.raises(ConfigError, match=r"csi_rs.report.max_rank: MU-MIMO co-schedules one-layer UEs"):
        _mu_cell(make_scenario, 2, **{"csi_rs.report": {"kind": "ideal", "subband_prbs": 2, "max_rank": 2},
                                      "phy.num_ue_antennas": 2})


def _olla_replay(blocks: pd.DataFrame, step_up_db: float, target: float, lo: float, hi: float) -> np.ndarray:
    """The OLLA offset each of a UE's first transmissions ``blocks`` (time order) should have been sent
    with, replayed from their own ACKs alone: every ACK/NACK that reached the gNB by a block's slot
    (``ack_t_us`` <= ``t_us``: feedback is applied at the start of the slot) moves the offset."""
    step_down = step_up_db * target / (1 - target)
    events = blocks.sort_values("ack_t_us", kind="stable")[["ack_t_us", "ack"]].to_numpy()
    offset, k, out = 0.0, 0, []
    for t in blocks.t_us:
        while k < len(events) and events[k][0] <= t:
            offset = min(max(offset + (-step_down if events[k][1] else step_up_db), lo), hi)
            k += 1
        out.append(offset)
    return np.array(out)


def test_mu_blocks_take_their_mcs_from_the_set_estimate_through_their_own_olla(make_scenario, tmp_path):
    """scheduler.mu_mcs set_estimate (the default): each UE runs two OLLA loops, one fed by its co-scheduled
    first transmissions, one by the others. Replayed from the log, each block's offset is exactly what
    its own loop's ACKs made it, and the MU blocks' first-transmission BLER is held near the 10 % target
    (0.090 measured). On this slow, ideal-CSI cell su_cqi's single loop holds it too (0.091); the bundled
    cell, where it does not, is in docs/simulation.md."""
    sc = _mu_cell(make_scenario, 2, **{"duration_s": 1.0})
    assert sc.scheduler.mu_mcs == "set_estimate"
    _, slots = _run(sc, tmp_path / "est")
    o = sc.link_adaptation.olla
    first = slots[slots.tx_round == 1].sort_values("t_us", kind="stable")
    first = first.assign(mu=first.co_scheduled.apply(len) > 0)
    for (_, mu), blocks in first.groupby(["ue", "mu"]):
        replay = _olla_replay(blocks, o.step_up_db, o.bler_target, o.offset_min_db, o.offset_max_db)
        np.testing.assert_allclose(blocks.olla_offset_db.to_numpy(), replay, atol=1e-9)
    mu_bler = 1 - first[first.mu].ack.mean()
    assert first.mu.mean() > 0.3 and 0.06 < mu_bler < 0.14, (first.mu.mean(), mu_bler)
