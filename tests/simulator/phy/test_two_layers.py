"""Two layers (rank 2) at link level: the chain with ``ChainKey.num_layers`` 2 and the backend's
per-layer-count batching.

Every test here uses 4 PRBs at 30 kHz, two UE antennas and MCS 10 of table 1 (16QAM), and shares
chains through ``get_chain``'s per-process cache: the cost is the XLA compilation (~1-4 s per
chain and batch size on two cores). The backends are built directly (the scenario asks for
``csi_rs.report.max_rank`` 1: only the transmissions carry two layers).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator.link_adaptation.tables import bler_table, mcs_entries
from simulator.loader import validate_data
from simulator.phy.abstraction import AbstractionBackend
from simulator.phy.base import Transmission
from simulator.phy.link_level import LinkLevelBackend
from simulator.phy.nr_chain import ChainKey, get_chain, pusch_config
from simulator.phy.precoding import layer_sinr

NUM_PRBS = 4
NUM_SC = 12 * NUM_PRBS
NUM_ANT = 2
MCS = 10              # table 1: 16QAM, R = 340/1024


def _key(receiver="genie_lmmse", mcs=MCS, num_layers=2):
    return ChainKey(NUM_PRBS, 30, 1, 2, NUM_ANT, receiver, mcs, num_layers=num_layers)


def _scenario(receiver="genie_lmmse", **phy):
    return validate_data({
        "name": "ll2", "duration_s": 0.01,
        "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": NUM_PRBS},
        "phy": {"backend": "link_level", "receiver": receiver, "num_ue_antennas": NUM_ANT, **phy},
        "ues": [{"id": 0}, {"id": 1}],
    })


def _tx(ue, slot, snr_db, h, layers=2, harq=0, rnd=1):
    tbs = int(bler_table(1, NUM_PRBS, 2, num_layers=layers).tbs_bits[MCS])
    return Transmission(ue, slot, slot * 500, harq, rnd, MCS, tbs, snr_db, h, layers=layers)


def _identity(num: int) -> np.ndarray:
    """[num, 2, 2, S] complex64: layer l on UE antenna l alone."""
    return np.broadcast_to(np.eye(NUM_ANT, 2, dtype=np.complex64)[None, :, :, None], (num, NUM_ANT, 2, NUM_SC)).copy()


def _unitary(num: int) -> np.ndarray:
    """[num, 2, 2, S] complex64: per row a different 2x2 unitary channel (UE antenna x layer), flat
    in frequency: orthogonal layers of unit norm."""
    th, ph = np.linspace(0.0, 1.2, num), np.linspace(0.0, 3.0, num)
    u = np.stack([np.stack([np.cos(th), -np.sin(th) * np.exp(1j * ph)], -1),
                  np.stack([np.sin(th) * np.exp(-1j * ph), np.cos(th)], -1)], -2)
    return np.broadcast_to(u[..., None], (num, NUM_ANT, 2, NUM_SC)).astype(np.complex64)


def _rayleigh(rng, num: int) -> np.ndarray:
    """[num, 2, 2, S] complex64 i.i.d. unit-variance entries (genie CSI needs no smoothness)."""
    z = rng.normal(size=(num, NUM_ANT, 2, NUM_SC)) + 1j * rng.normal(size=(num, NUM_ANT, 2, NUM_SC))
    return (z / np.sqrt(2)).astype(np.complex64)


def _seeds(n: int) -> np.ndarray:
    return np.array([[5, 0, s, 1, s, 0] for s in range(n)], np.int64)


def test_two_layer_tbs_matches_tables():
    for mcs_table in (1, 2):
        one, two = mcs_entries(mcs_table, NUM_PRBS, 2), mcs_entries(mcs_table, NUM_PRBS, 2, 2)
        for mcs in (3, 10, 20, 27):
            pc = pusch_config(ChainKey(NUM_PRBS, 30, mcs_table, 2, NUM_ANT, "genie_lmmse", mcs, num_layers=2))
            pc1 = pusch_config(ChainKey(NUM_PRBS, 30, mcs_table, 2, NUM_ANT, "genie_lmmse", mcs))
            assert pc.num_layers == pc.num_antenna_ports == 2 and pc.precoding == "non-codebook"
            assert int(pc.tb_size) == two[mcs].tbs_bits > one[mcs].tbs_bits == int(pc1.tb_size), (mcs_table, mcs)
            assert pc.num_coded_bits == 2 * pc1.num_coded_bits
    # the chain checks it against the two-layer table when it is built
    table2, two = bler_table(1, NUM_PRBS, 2, num_layers=2), mcs_entries(1, NUM_PRBS, 2, 2)
    for mcs in (5, MCS, 20):
        chain = get_chain(_key(mcs=mcs))
        assert chain.tbs_bits == table2.tbs_bits[mcs] == two[mcs].tbs_bits
        assert chain.num_coded_bits == 2 * chain.data_re_index.size * chain.num_bits_per_symbol


def test_two_dmrs_ports_share_the_res_with_their_occ():
    """Ports 0 and 1 on the same REs (CDM group 0, every other subcarrier of the DMRS symbols), port 1
    = port 0 times the frequency OCC w_f = (+1, -1)."""
    chain = get_chain(_key())
    p = np.asarray(chain.resource_grid.pilot_pattern.pilots)[0]             # [2 ports, num_pilots]
    assert np.array_equal(p[0] != 0, p[1] != 0) and (p[0] != 0).mean() == 0.5
    occ = np.tile([1.0, 0.0, -1.0, 0.0], p.shape[1] // 4)
    np.testing.assert_allclose(p[1], p[0] * occ, atol=1e-6)


def test_power_is_split_over_the_layers():
    """Noiseless, each layer on its own UE antenna: every antenna receives half the transmit power on
    the data REs and on the DMRS symbols, i.e. the total per RE is 1 as with one layer."""
    chain = get_chain(_key())
    y, c = chain.received(_seeds(8), _identity(8), np.zeros(8, np.float32))
    assert y.shape == (8, NUM_ANT, 14, NUM_SC) and c.shape == (8, chain.num_coded_bits)
    data = np.abs(y[:, :, chain.data_re]) ** 2                                # [8, A, data REs]
    np.testing.assert_allclose(data.mean(axis=(0, 2)), 0.5, rtol=0.05)     # 16QAM: unit mean power per layer
    dmrs = np.abs(y[:, :, ~chain.data_re]) ** 2
    np.testing.assert_allclose(dmrs.mean(axis=(0, 2)), 0.5, rtol=1e-5)     # beta^2 = 2 on half the REs, x 1/2


@pytest.mark.parametrize("receiver", ["genie_lmmse", "lmmse"])
def test_orthogonal_layers_at_high_snr_decode_every_block(receiver):
    chain = get_chain(_key(receiver))
    b, snr_db = 8, 30.0
    out = chain.evaluate(_seeds(b), _unitary(b), np.full(b, 10 ** (-snr_db / 10), np.float32),
                         np.zeros((b, chain.num_coded_bits), np.float32))
    assert out.ack.all()
    assert (out.ber == 0).all()
    per_layer_db = snr_db - 10 * np.log10(2)                                  # unit-norm layers, power split
    if receiver == "genie_lmmse":
        np.testing.assert_allclose(out.sinr_eff_db, per_layer_db, atol=1e-3)
    else:   # LS: each layer's estimate carries no/4 of error, the detector counts both: no * 1.5
        np.testing.assert_allclose(out.sinr_eff_db, per_layer_db - 10 * np.log10(1.5), atol=0.3)


def test_genie_sinr_eff_db_equals_the_abstraction():
    """The same two-layer transmissions through both backends: the link-level genie EESM equals the
    abstraction's EESM of ``layer_sinr`` (two-layer table), and for an orthogonal channel the known
    answer snr / 2 per layer."""
    rng = np.random.default_rng(3)
    hs = np.concatenate([_unitary(1), _rayleigh(rng, 3)])
    snrs = [12.0, 0.0, 5.0, 10.0]
    txs = [_tx(i % 2, i, snr, h, harq=i) for i, (snr, h) in enumerate(zip(snrs, hs))]
    ab = AbstractionBackend(bler_table(1, NUM_PRBS, 2), {0: np.random.default_rng(0), 1: np.random.default_rng(1)},
                            bler_table(1, NUM_PRBS, 2, num_layers=2))
    ll = LinkLevelBackend(_scenario(link_level_batch=4), {0: 1, 1: 2})
    ab_txs = [dataclasses.replace(tx) for tx in txs]
    for a, tx in zip(ab_txs, txs):
        ab.submit(a)
        ll.submit(tx)
    ll.resolve(txs[0])
    table2 = bler_table(1, NUM_PRBS, 2, num_layers=2)
    for a, tx, h, snr in zip(ab_txs, txs, hs, snrs):
        assert a.sinr_eff_db == table2.eesm_db(layer_sinr(h, snr).reshape(-1), MCS)
        assert abs(tx.sinr_eff_db - a.sinr_eff_db) < 2e-3, (snr, tx.sinr_eff_db, a.sinr_eff_db)
    assert abs(txs[0].sinr_eff_db - (12.0 - 10 * np.log10(2))) < 1e-3
    assert len({round(tx.sinr_eff_db, 2) for tx in txs}) == 4


def test_results_do_not_depend_on_batching_or_on_one_layer_neighbours():
    """Same seeds give the same results; a batch of 4 equals 4 batches of 1; one-layer transmissions
    of the same MCS pending beside them go through their own chain and change nothing."""
    rng = np.random.default_rng(5)
    hs = list(_unitary(4) + 0.3 * _rayleigh(rng, 4))
    snrs = rng.uniform(8.0, 14.0, 4)

    def run(groups, min_batch, one_layer=0):
        be = LinkLevelBackend(_scenario(receiver="lmmse", link_level_batch=min_batch), {0: 21, 1: 22})
        txs = [_tx(i % 2, i, float(snr), h, harq=i) for i, (snr, h) in enumerate(zip(snrs, hs))]
        extra = [_tx(k % 2, 10 + k, 10.0, hs[k][:, 0], layers=1, harq=4 + k) for k in range(one_layer)]
        i = 0
        for g in groups:
            for tx in txs[i:i + g] + (extra if i == 0 else []):
                be.submit(tx)
            be.resolve(txs[i])
            i += g
        assert all(tx.ack is not None for tx in extra)
        return [(tx.ack, tx.ber, round(tx.sinr_eff_db, 3)) for tx in txs]

    two, one = get_chain(_key("lmmse")), get_chain(_key("lmmse", num_layers=1))
    calls2, calls1 = two.calls, one.calls
    a = run([4], 4, one_layer=2)
    assert (two.calls - calls2, one.calls - calls1) == (1, 1)   # one call per layer count
    assert a == run([4], 4) == run([1, 1, 1, 1], 1)
    assert len({r[1] for r in a}) > 1                             # the transmissions do differ
    assert not all(r[0] for r in a) and any(r[0] for r in a)      # some blocks fail, some decode


def test_padded_inputs_for_two_layers():
    chain = get_chain(_key())
    seeds, h, no = chain.padded_inputs(3, 2)
    assert seeds.shape == (4, 6) and not seeds.any() and (no == 1).all()
    assert chain.h_shape == (NUM_ANT, 2, NUM_SC) and h.shape == (4, NUM_ANT, 2, NUM_SC) and h.dtype == np.complex64
    np.testing.assert_array_equal(h, _identity(4))


def test_refusals():
    with pytest.raises(ValueError, match="neural receiver is one-layer"):
        get_chain(_key("neural"))
    with pytest.raises(ValueError, match="at most one per UE antenna"):
        get_chain(ChainKey(NUM_PRBS, 30, 1, 2, 1, "genie_lmmse", MCS, num_layers=2))
    with pytest.raises(ValueError, match="1 or 2 layers"):
        get_chain(ChainKey(NUM_PRBS, 30, 1, 2, 4, "genie_lmmse", MCS, num_layers=3))


def test_engine_runs_rank_2_at_link_level(make_scenario, tmp_path):
    """End to end: two UE antennas, a 1x8 array, ideal CSI with max_rank 2 at 25 dB: after the first
    report every transport block is a two-layer one (two-layer TBS) and the link-level chain decodes them."""
    import pandas as pd

    from simulator.engine import Simulation

    sc = make_scenario({"duration_s": 0.03, "carrier.num_prbs": NUM_PRBS, "csi_rs.period_ms": 5,
                        "csi_rs.report_delay_ms": 1, "gnb": {"antenna_rows": 1, "antenna_cols": 8},
                        "csi_rs.report": {"kind": "ideal", "subband_prbs": 1, "max_rank": 2},
                        "phy.num_ue_antennas": NUM_ANT, "snr": {"model": "fixed", "snr_db": 25},
                        "channel": {"model": "tdl", "profile": "A", "delay_spread_ns": 30},
                        "ues": [{"id": 0, "mobility": {"model": "static", "position_m": [10.0, 0, 1.5]}}],
                        "link_adaptation.olla.enabled": False, "phy.backend": "link_level"})
    Simulation(sc, tmp_path).run()
    slots = pd.read_parquet(tmp_path / "slots.parquet")
    two = slots[slots.layers == 2]
    assert len(two) > len(slots) / 2 and (slots[slots.t_us > two.t_us.min()].layers == 2).all()
    t2 = bler_table(1, NUM_PRBS, 2, num_layers=2).tbs_bits
    assert (two.tbs_bits.values == t2[two.mcs.values]).all()
    assert two.ber.between(0, 0.5).all() and two.sinr_eff_db.notna().all() and two.ack.mean() > 0.5
