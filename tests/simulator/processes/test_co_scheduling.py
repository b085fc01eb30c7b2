"""MU-MIMO co-scheduling (``simulator.processes.co_scheduling``) against a brute-force computation:
the full MIMO response of the slot, one RZF per group on the unpadded held rows
(``rzf_precoder``), ``precoded_channels`` and ``mu_sinr`` group by group. The batched path pads the
sets to one size, precodes in the path domain and takes the held-CSI rates from K x K Gram
matrices: none of that may change a number beyond the channel's complex64 rounding."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest

from simulator.csi.report import Precoder
from simulator.channel.snr import SnrModel
from simulator.engine import build_ue, seeds_for
from simulator.link_adaptation.tables import bler_table
from simulator.loader import validate_data
from simulator.phy.mu_precoding import mu_sinr, precoded_channels, rzf_precoder
from simulator.phy.precoding import dominant_precoder
from simulator.processes.co_scheduling import CoScheduling
from simulator.scheduler.prb_groups import group_sizes_prbs, group_subcarriers
from tests.conftest import TINY

SLOT = 7
DATA_RE_PER_PRB = 144


@pytest.fixture(scope="module")
def cell():
    """Five UMi UEs around a 2x4 array on 11 PRBs in groups of 2 (the last group one PRB: a shorter
    group must keep its own width), each holding an ideal report of slot 0 with a CQI SINR of its own."""
    data = copy.deepcopy(TINY)
    starts = [[60, 0, 1.5], [0, 80, 1.5], [-60, 40, 1.5], [40, -100, 1.5], [-90, -30, 1.5]]
    data.update({"duration_s": 0.01, "channel": {"model": "umi"}, "gnb": {"antenna_rows": 2, "antenna_cols": 4},
                 "snr": {"model": "fixed", "snr_db": 15},
                 "ues": [{"id": u, "mobility": {"model": "linear", "speed_kmh": 30, "start_m": s}}
                         for u, s in enumerate(starts)]})
    data["carrier"] = {**data["carrier"], "num_prbs": 11}
    data["csi_rs"] = {**data.get("csi_rs", {}), "report": {"kind": "ideal", "subband_prbs": 2}}
    sc = validate_data(data)
    table = bler_table(sc.phy.mcs_table, sc.carrier.num_prbs, sc.phy.num_dmrs_symbols, sc.phy.bler_tables)
    seeds = seeds_for(sc)
    snr = SnrModel(sc.snr, sc.carrier, sc.gnb)
    sizes = group_sizes_prbs(sc.carrier.num_prbs, 2)
    subband_of_sc = np.arange(12 * sc.carrier.num_prbs) // 24
    ctxs = []
    for k, u in enumerate(sc.ues):
        ue, link = build_ue(sc, u, table, snr, seeds[u.id]["channel"])
        link.precoder = Precoder(dominant_precoder(ue.channel.cfr_slot(0), subband_of_sc), 24)
        link.sinr_est_db = 8.0 + 3.0 * k
        link.olla.offset_db = 0.5 * k
        ctxs.append(SimpleNamespace(ue=ue, link=link))
    co = CoScheduling(ctxs, sizes, DATA_RE_PER_PRB, sc.carrier.slot_us * 1e-6)
    co.begin_slot()
    return SimpleNamespace(co=co, ctxs=ctxs, sizes=sizes, group_sc=group_subcarriers(sizes))


def _held_rows(cell, members, g):
    return np.stack([np.sqrt(10 ** (cell.ctxs[u].link.sinr_est_db / 10)) * np.conj(cell.ctxs[u].link.precoder.w[g])
                     for u in members])                                                  # [K, gnb]


def test_slot_sinr_equals_group_by_group_brute_force(cell):
    # sets of sizes 3, 1, 2, none, 3, 1 (the last group is the short one); UE 2 on four groups
    ue_sets = np.array([[0, 2, 4], [1, -1, -1], [2, 3, -1], [-1, -1, -1], [4, 1, 2], [2, -1, -1]])
    out = cell.co.slot_sinr(SLOT, ue_sets)
    expect: dict[int, list] = {}
    for g, row in enumerate(ue_sets):
        members = row[row >= 0]
        if len(members) == 0:
            continue
        w = rzf_precoder(_held_rows(cell, members, g)[None], 0.0)                         # [1, gnb, K]
        h = np.stack([cell.ctxs[u].ue.channel.cfr_slot(SLOT)[..., cell.group_sc[g]] for u in members])
        snr_db = np.array([cell.ctxs[u].ue.snr_db[SLOT] for u in members])
        sinr = mu_sinr(precoded_channels(h, w, len(cell.group_sc[g])), snr_db)            # [K, L]
        for k, u in enumerate(members):
            expect.setdefault(int(u), []).append((sinr[k], set(members.tolist()) - {u}))
    assert set(out) == set(expect)
    for u, parts in expect.items():
        re, gain_db, co, h, h_int = out[u]
        assert h is None and h_int is None                           # keep_channels off
        np.testing.assert_allclose(re, np.concatenate([p[0] for p in parts]), rtol=2e-4)
        assert co == set().union(*(p[1] for p in parts))
        assert np.isfinite(gain_db)
    assert len(out[2][0]) == 3 * 24 + 12                                                 # three full groups, the short one


def test_set_rates_equal_rzf_on_the_held_rows(cell):
    co, table = cell.co, cell.ctxs[0].link.olla.table
    for k in (1, 2, 3, 4):
        sets = np.array([[0, 1, 2, 3][:k] + [-1] * (4 - k), [4, 2, 0, 1][:k] + [-1] * (4 - k),
                         [3, 4, 1, 0][:k] + [-1] * (4 - k)])
        groups = np.array([0, 3, 5])
        rates = co.set_rate_fn(sets, groups)
        for row, g, got in zip(sets, groups, rates):
            members = row[:k]
            f = _held_rows(cell, members, g)
            p = np.abs(f @ rzf_precoder(f[None], 0.0)[0]) ** 2                            # [K UE, K stream]
            own = np.diag(p)
            sinr_db = 10 * np.log10(own / (1 + p.sum(axis=1) - own))
            for j, u in enumerate(members):
                link = cell.ctxs[u].link
                mcs = link.olla.mcs_of_snr_index()[table.snr_index(sinr_db[j] - link.olla.offset_db)]
                assert got[j] == pytest.approx(table.se[mcs] * co.re_per_group[g] / co.slot_s, rel=1e-12)
            assert (got[k:] == 0).all()


def test_a_set_with_a_ue_without_a_report_gets_no_rate(cell):
    link = cell.ctxs[3].link
    saved = link.precoder, link.sinr_est_db
    try:
        link.precoder, link.sinr_est_db = None, None
        cell.co.begin_slot()
        rates = cell.co.set_rate_fn(np.array([[0, 3], [0, 1]]), np.array([1, 1]))
        assert (rates[0] == 0).all() and (rates[1] > 0).all()
    finally:
        link.precoder, link.sinr_est_db = saved
        cell.co.begin_slot()


def test_kept_channels_give_the_sinr(cell):
    """keep_channels (link_level): a UE's own stream h [ue_ant, REs] and the other streams h_int
    [ue_ant, M - 1, REs] are the ones its SINR comes from: snr |h|^2 / (1 + snr sum_j |h_j|^2), one antenna."""
    co = CoScheduling(cell.ctxs, cell.sizes, DATA_RE_PER_PRB, cell.co.slot_s, keep_channels=True)
    co.begin_slot()
    # a slot with a 3-set, and one whose largest set is 2 and one of single-user groups only: h_int keeps
    # its M - 1 = 2 streams (zero where a set has fewer), the chain's shape
    for ue_sets in (np.array([[0, 2, 4], [1, -1, -1], [2, 3, -1], [-1, -1, -1], [4, 1, 2], [2, -1, -1]]),
                    np.array([[0, 2, -1], [1, -1, -1], [2, 3, -1], [-1, -1, -1], [4, -1, -1], [2, -1, -1]]),
                    np.array([[0, -1, -1], [1, -1, -1], [2, -1, -1], [-1, -1, -1], [4, -1, -1], [2, -1, -1]])):
        out = co.slot_sinr(SLOT, ue_sets)
        for u, (re, _, _, h, h_int) in out.items():
            snr = 10 ** (cell.ctxs[u].ue.snr_db[SLOT] / 10)
            assert h.shape == (1, len(re)) and h_int.shape == (1, 2, len(re))
            own = np.abs(h[0].astype(complex)) ** 2
            other = (np.abs(h_int[0].astype(complex)) ** 2).sum(axis=0)
            np.testing.assert_allclose(re, snr * own / (1 + snr * other), rtol=1e-5)
            alone = all((row >= 0).sum() == 1 for row in ue_sets if u in row)
            assert (h_int == 0).all() == alone


def test_sets_solved_by_the_search_are_read_back_unchanged(cell):
    """The slot's precoders and expected SINRs come from the inverses the scheduler's search solved when it
    tried the kept sets (and from a fresh solve when it did not): the same numbers, bit for bit, and the
    same as ``rzf_precoder`` on the held rows."""
    ue_sets = np.array([[0, 2, 4], [1, -1, -1], [2, 3, -1], [-1, -1, -1], [4, 1, 2], [2, -1, -1]])
    fresh = CoScheduling(cell.ctxs, cell.sizes, DATA_RE_PER_PRB, cell.co.slot_s)
    fresh.begin_slot()
    want, want_db = fresh.slot_sinr(SLOT, ue_sets), fresh.expected_sinr_db(ue_sets)
    searched = CoScheduling(cell.ctxs, cell.sizes, DATA_RE_PER_PRB, cell.co.slot_s)
    searched.begin_slot()
    # the search's trials: the kept sets among others (a rejected candidate on group 2, a 3-set on group 1)
    searched.set_rate_fn(np.array([[0, 2, -1], [1, 3, -1], [2, 3, -1], [4, 1, -1]]), np.array([0, 1, 2, 4]))
    searched.set_rate_fn(np.array([[0, 2, 4], [2, 3, 0], [4, 1, 2]]), np.array([0, 2, 4]))
    assert set(searched._solved) == {2, 3}
    got, got_db = searched.slot_sinr(SLOT, ue_sets), searched.expected_sinr_db(ue_sets)
    assert got_db == want_db and set(got) == set(want)
    for u in want:
        assert got[u][0].tobytes() == want[u][0].tobytes() and got[u][1:3] == want[u][1:3]
    w = searched._precoders(ue_sets[[0, 2]], np.array([0, 2]))                            # [2, gnb, 3]
    for row, g, got_w in zip(ue_sets[[0, 2]], (0, 2), w):
        members = row[row >= 0]
        ref = rzf_precoder(_held_rows(cell, members, g)[None], 0.0)[0]
        np.testing.assert_allclose(got_w[:, :len(members)], ref, atol=1e-12)
        assert (got_w[:, len(members):] == 0).all()
