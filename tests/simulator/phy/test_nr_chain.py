"""The NR transport-block chain (Sionna PUSCH components as the PDSCH stand-in), one MCS per chain.

Every test here uses 4 PRBs at 30 kHz and shares chains through ``get_chain``'s per-process
cache: the cost is the XLA compilation (~1-3 s per MCS and batch size on two cores).
"""
from __future__ import annotations

import numpy as np
import pytest

from simulator.link_adaptation.tables import bler_table, mcs_entries
from simulator.phy.nr_chain import ChainKey, get_chain, pusch_config

NUM_PRBS = 4
QPSK_MCS = 5          # table 1: QPSK, R = 379/1024


def test_tbs_matches_tables():
    for mcs_table in (1, 2):
        for num_dmrs in (1, 2, 3, 4):
            for e in mcs_entries(mcs_table, NUM_PRBS, num_dmrs):
                pc = pusch_config(ChainKey(NUM_PRBS, 30, mcs_table, num_dmrs, 1, "genie_lmmse", e.mcs))
                assert int(pc.tb_size) == e.tbs_bits, (mcs_table, num_dmrs, e.mcs)
                assert pc.tb.num_bits_per_symbol == e.modulation_order
                assert len(pc.dmrs_symbol_indices) == num_dmrs
    # the chain itself checks it again when it is built, for a few MCS of the default config
    table = bler_table(1, NUM_PRBS, 2)
    for mcs in (3, 10, 20, 28):
        chain = get_chain(ChainKey(NUM_PRBS, 30, 1, 2, 1, "genie_lmmse", mcs))
        assert chain.tbs_bits == table.tbs_bits[mcs] == mcs_entries(1, NUM_PRBS, 2)[mcs].tbs_bits


def test_every_mcs_the_tables_cover_can_be_built():
    """Sionna's LDPC has no repetition below rate 1/5: MCS 0 cannot be built, but the SYS BLER
    tables (hence CQI/OLLA) never select it; every MCS they can select builds."""
    for mcs_table in (1, 2):
        table = bler_table(mcs_table, NUM_PRBS, 2)
        for mcs in np.flatnonzero(table.available):
            get_chain(ChainKey(NUM_PRBS, 30, mcs_table, 2, 1, "genie_lmmse", int(mcs)))
    with pytest.raises(ValueError, match="cannot be simulated"):
        get_chain(ChainKey(NUM_PRBS, 30, 1, 2, 1, "genie_lmmse", 0))


def test_transmitter_matches_pusch_transmitter():
    """The composed TX blocks produce exactly what Sionna's PUSCHTransmitter does."""
    import tensorflow as tf
    from sionna.phy.nr import PUSCHTransmitter

    chain = get_chain(ChainKey(NUM_PRBS, 30, 1, 2, 1, "genie_lmmse", QPSK_MCS))
    bits = tf.cast(tf.random.stateless_uniform([3, 1, chain.tbs_bits], [1, 2], 0, 2, tf.int32), tf.float32)
    ours = chain.rg_mapper(chain.layer_mapper(chain.mapper(chain.tb_encoder(bits))))
    ref = PUSCHTransmitter(chain.pusch_config, return_bits=False)(bits)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())


def test_chase_combining_sums_llrs():
    """A retransmission's combined soft buffer is the previous buffer plus its own LLRs."""
    chain = get_chain(ChainKey(NUM_PRBS, 30, 1, 2, 1, "genie_lmmse", QPSK_MCS))
    b = 8
    h = np.ones((b, 1, chain.num_subcarriers), np.complex64)
    no = np.full(b, 10 ** (1.0 / 10), np.float32)      # -1 dB
    zeros = np.zeros((b, chain.num_coded_bits), np.float32)
    seeds1 = np.array([[7, 0, s, 1, s, 0] for s in range(b)], np.int64)
    seeds2 = np.array([[7, 0, s + 100, 2, s, 0] for s in range(b)], np.int64)   # round 2, same payload
    _, _, _, llr1 = chain(seeds1, h, no, zeros)
    _, _, _, llr2 = chain(seeds2, h, no, zeros)
    _, _, _, comb = chain(seeds2, h, no, llr1)
    np.testing.assert_allclose(comb, llr1 + llr2, rtol=1e-6, atol=1e-5)


def test_padded_inputs_bucket_the_batch():
    """Batches are padded to min_batch or the next power of two (the sizes XLA compiles), with unit
    channel and noise rows."""
    chain = get_chain(ChainKey(NUM_PRBS, 30, 1, 2, 1, "genie_lmmse", QPSK_MCS))
    assert [len(chain.padded_inputs(n, 2)[0]) for n in (1, 2, 3, 4, 5, 9)] == [2, 2, 4, 4, 8, 16]
    assert len(chain.padded_inputs(5, 8)[0]) == 8
    seeds, h, no = chain.padded_inputs(3, 2)
    assert seeds.shape == (4, 6) and seeds.dtype == np.int64 and not seeds.any()
    assert h.shape == (4, 1, chain.num_subcarriers) and h.dtype == np.complex64 and (h == 1).all()
    assert no.dtype == np.float32 and (no == 1).all()


@pytest.mark.parametrize("receiver", ["lmmse", "genie_lmmse"])
def test_chain_cache_and_unknown_receiver(receiver):
    key = ChainKey(NUM_PRBS, 30, 1, 2, 1, receiver, 3)
    assert get_chain(key) is get_chain(key)
    with pytest.raises(ValueError):
        get_chain(ChainKey(NUM_PRBS, 30, 1, 2, 1, "zf", 3))


def test_one_link_per_modulation_order_changes_no_output():
    """MCS 3 and 5 (QPSK) share one link program, MCS 10 (16-QAM) has its own; through the shared link
    (built from MCS 3's chain) MCS 5 gives exactly what it gives through a link built from its own chain,
    the EESM with its own beta included."""
    from simulator.phy.nr_chain import ChainOutput, LinkProgram

    qpsk, other, qam16 = (get_chain(ChainKey(NUM_PRBS, 30, 1, 2, 1, "lmmse", m)) for m in (3, QPSK_MCS, 10))
    assert qpsk._link is other._link and qam16._link is not qpsk._link
    assert qpsk.beta != other.beta
    rng = np.random.default_rng(4)
    n = 4
    seeds = np.stack([np.full(n, 9), np.zeros(n), np.arange(n), np.ones(n), np.arange(n), np.zeros(n)], 1)
    h = ((rng.normal(size=(n, 1, other.num_subcarriers)) + 1j * rng.normal(size=(n, 1, other.num_subcarriers)))
         / np.sqrt(2)).astype(np.complex64)
    args = (seeds.astype(np.int64), h, np.full(n, 0.5, np.float32), np.zeros((n, other.num_coded_bits), np.float32))
    shared = other.evaluate(*args)
    saved, other._link = other._link, LinkProgram(other, "test: MCS 5's own link")
    try:
        own = other.evaluate(*args)
    finally:
        other._link = saved
    for field in ChainOutput._fields:
        np.testing.assert_array_equal(getattr(shared, field), getattr(own, field), err_msg=field)
    assert np.isfinite(shared.sinr_eff_db).all() and 0 < shared.ber.mean() < 0.5
