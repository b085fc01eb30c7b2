"""The link-level backend under a scheduler: a block on n PRBs through the chain of n PRBs on its
allocated subcarriers, and MU-MIMO blocks with the co-scheduled streams as interference.

Known answers: with genie CSI on a flat channel, the chain's post-LMMSE SINR with interfering
streams of powers p_j is 1 / (no + sum_j p_j) (one UE antenna) and h^H R^-1 h with
R = no I + sum_j g_j g_j^H (two); the backend gives a scheduled block exactly the chain's outcome on
its subcarriers. Chains of 2 and 4 PRBs at 30 kHz (~5-10 s of compilation each).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.link_adaptation.tables import bler_table
from simulator.loader import validate_data
from simulator.phy.base import Transmission
from simulator.phy.link_level import LinkLevelBackend
from simulator.phy.nr_chain import ChainKey, get_chain

MCS = 10
CARRIER_PRBS = 12


def _seeds(n: int) -> np.ndarray:
    return np.stack([np.full(n, 99), np.zeros(n), np.arange(n), np.ones(n), np.arange(n), np.zeros(n)],
                    axis=1).astype(np.int64)


@pytest.mark.parametrize("num_ue_ant", [1, 2])
def test_interference_sinr_known_answer(num_ue_ant):
    chain = get_chain(ChainKey(2, 30, 1, 2, num_ue_ant, "genie_lmmse", MCS, num_interferers=2))
    n, no = 4, 0.1
    rng = np.random.default_rng(3)
    h = (rng.standard_normal((n, num_ue_ant, 1)) + 1j * rng.standard_normal((n, num_ue_ant, 1))).astype(np.complex64)
    g = (rng.standard_normal((n, num_ue_ant, 2, 1)) * 0.5 + 0.5j).astype(np.complex64)
    out = chain.evaluate(_seeds(n), np.repeat(h, 24, axis=-1), np.full(n, no, np.float32),
                         np.zeros((n, chain.num_coded_bits), np.float32), h_int=np.repeat(g, 24, axis=-1))
    for i in range(n):
        r = no * np.eye(num_ue_ant) + g[i, :, :, 0].astype(complex) @ g[i, :, :, 0].conj().T.astype(complex)
        hi = h[i, :, 0].astype(complex)
        expect_db = 10 * np.log10(np.real(hi.conj() @ np.linalg.solve(r, hi)))
        assert out.sinr_eff_db[i] == pytest.approx(expect_db, abs=2e-3)
    with pytest.raises(ValueError, match="h_int is needed exactly"):
        chain.evaluate(_seeds(n), np.repeat(h, 24, axis=-1), np.full(n, no, np.float32),
                       np.zeros((n, chain.num_coded_bits), np.float32))


def _backend():
    sc = validate_data({
        "name": "ll_sched", "duration_s": 0.01,
        "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": CARRIER_PRBS},
        "csi_rs": {"report": {"subband_prbs": 2}},
        "phy": {"backend": "link_level", "receiver": "lmmse", "link_level_batch": 4},
        "scheduler": {"kind": "round_robin", "prb_group_prbs": 2},
        "ues": [{"id": 0}, {"id": 1}],
    })
    return LinkLevelBackend(sc, {0: 5, 1: 6})


def test_a_scheduled_block_is_the_chain_of_its_allocation_on_its_subcarriers():
    """Two PRB groups (4 PRBs, non-adjacent) of a 12-PRB carrier: the backend's outcome is the 4-PRB
    chain's on those subcarriers side by side, bit for bit; its TBS is the 4-PRB one."""
    rng = np.random.default_rng(4)
    h_full = (rng.standard_normal((1, 12 * CARRIER_PRBS)) + 1j * rng.standard_normal((1, 12 * CARRIER_PRBS))
              ).astype(np.complex64)
    sc = np.concatenate([np.arange(24, 48), np.arange(96, 120)])
    tbs = int(bler_table(1, 4, 2).tbs_bits[MCS])
    be = _backend()
    tx = Transmission(0, 3, 1500, 1, 1, MCS, tbs, 12.0, h_full, sc=sc, groups=(1, 4))
    be.submit(tx)
    be.resolve(tx)
    chain = get_chain(ChainKey(4, 30, 1, 2, 1, "lmmse", MCS))
    assert chain.tbs_bits == tbs
    seeds = np.array([[5, 0, 3, 1, 3, 1]], np.int64)
    ref = chain.evaluate(seeds, h_full[None][..., sc], np.full(1, 10 ** -1.2, np.float32),
                         np.zeros((1, chain.num_coded_bits), np.float32))
    assert tx.ack == bool(ref.ack[0]) and tx.sinr_eff_db == pytest.approx(float(ref.sinr_eff_db[0]), abs=0)
    assert tx.ber == pytest.approx(float(ref.ber[0]), abs=0)


@pytest.mark.slow
@pytest.mark.parametrize("max_ues", [1, 2])
def test_scheduled_cell_runs_at_link_level_near_the_abstraction(make_scenario, tmp_path, max_ues):
    """The tiny MU test cell (UMi, 2x4 array, 12 PRBs in groups of 2, ideal CSI, 4 UEs, 20 dB) at
    link level: allocations as the abstraction's rules make them, MU-MIMO co-scheduling used, and cell
    throughput within 15 % of the abstraction's (measured: SU -9 %, MU -5 % over 0.3 s)."""
    from simulator.engine import Simulation

    starts = [[60, 0, 1.5], [0, 80, 1.5], [-60, 40, 1.5], [40, -100, 1.5]]
    ues = [{"id": u, "mobility": {"model": "linear", "speed_kmh": 3, "start_m": s}} for u, s in enumerate(starts)]
    summaries = {}
    for backend in ("abstraction", "link_level"):
        sc = make_scenario({"duration_s": 0.2, "ues": ues, "channel": {"model": "umi"},
                            "snr": {"model": "fixed", "snr_db": 20}, "gnb": {"antenna_rows": 2, "antenna_cols": 4},
                            "csi_rs.report": {"kind": "ideal", "subband_prbs": 2}, "phy.backend": backend,
                            "scheduler": {"kind": "pf", "max_ues_per_prb": max_ues}})
        summaries[backend] = Simulation(sc, tmp_path / backend).run()
        slots = pd.read_parquet(tmp_path / backend / "slots.parquet")
        per_slot = slots.groupby(["slot"]).prb_groups.apply(lambda g: np.concatenate(list(g)))
        assert all(np.bincount(x).max() <= max_ues for x in per_slot)
        if max_ues > 1:
            assert (slots.co_scheduled.apply(len) > 0).mean() > 0.5
    ll, ab = summaries["link_level"].cell_throughput_mbps, summaries["abstraction"].cell_throughput_mbps
    assert abs(ll - ab) < 0.15 * ab, (ll, ab)
