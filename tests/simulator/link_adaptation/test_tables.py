"""The numpy BLER/EESM/OLLA fast paths equal the Sionna SYS blocks they replace."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from simulator.link_adaptation.cqi import CqiMapper
from simulator.link_adaptation.olla import Olla
from simulator.link_adaptation.tables import bler_table, mcs_entries, num_data_re


@pytest.fixture(scope="module")
def table():
    return bler_table(1, 52, 2)


@pytest.fixture(scope="module")
def sionna_pa():
    from sionna.sys import PHYAbstraction

    from simulator.link_adaptation.tables import bler_table_files

    return PHYAbstraction(load_bler_tables_from=bler_table_files("airtune"))


def test_tbler_and_eesm_match_sionna_phy_abstraction(table, sionna_pa, rng):
    num_re = num_data_re(52, 2)
    mcs = rng.integers(table.lowest_mcs, 29, size=64).astype(np.int32)
    # per-RE SINR of frequency-selective slots: [batch, sym=1, sc, ut=1, stream=1]
    sinr_db = rng.uniform(-5, 28, size=(64, 1))[:, None] + rng.normal(0, 4, size=(64, 1, 624))
    sinr = 10 ** (sinr_db / 10)
    sinr_in = np.repeat(sinr, 12, axis=1)[..., None, None]    # 12 data symbols -> num_re = 12 * 624
    assert sinr_in.shape[1] * sinr_in.shape[2] == num_re
    _, _, sinr_eff, tbler, _ = sionna_pa(tf.constant(mcs[:, None]), sinr=tf.constant(sinr_in, tf.float32),
                                         mcs_table_index=1, mcs_category=1)
    ours_db = np.array([table.eesm_db(sinr[i, 0], int(m)) for i, m in enumerate(mcs)])
    np.testing.assert_allclose(ours_db, 10 * np.log10(sinr_eff.numpy()[:, 0]), atol=2e-3)
    ours_tbler = np.array([table.tbler_scalar(int(m), d) for m, d in zip(mcs, ours_db)])
    close = np.abs(((ours_db + 5) / 0.1) % 1 - 0.5) > 0.05      # away from a grid-rounding tie
    np.testing.assert_allclose(ours_tbler[close], tbler.numpy()[close, 0], atol=1e-6)


def test_tbs_matches_sionna(table):
    from sionna.phy.nr.utils import calculate_tb_size, decode_mcs_index

    for e in mcs_entries(1, 52, 2):
        q, r = decode_mcs_index(e.mcs, 1, is_pusch=False)
        tbs = calculate_tb_size(q, r, num_prbs=52, num_ofdm_symbols=14, num_dmrs_per_prb=24)[0]
        assert int(tbs) == e.tbs_bits
        # TBS ~ data REs x spectral efficiency (38.214 quantisation and CRC make up the rest)
        assert e.tbs_bits == pytest.approx(num_data_re(52, 2) * e.spectral_efficiency, rel=0.05)


def test_olla_matches_sionna_outer_loop(table, sionna_pa, rng):
    from sionna.sys import OuterLoopLinkAdaptation

    ref = OuterLoopLinkAdaptation(sionna_pa, num_ut=1, bler_target=0.1, delta_up=0.5)
    ours = Olla(table, bler_target=0.1, step_up_db=0.5)
    sinr_db = 12.0
    num_re = num_data_re(52, 2)
    fb = -1
    for k in range(300):
        if k % 40 == 0:
            sinr_db = float(rng.uniform(0, 25))
        mcs_ref = int(ref(tf.constant([num_re]), harq_feedback=tf.constant([fb]),
                          sinr_eff=tf.constant([10 ** (sinr_db / 10)], tf.float32),
                          mcs_table_index=1, mcs_category=1)[0])
        if fb >= 0:
            ours.feedback(bool(fb))
        assert abs(ours.offset_db - float(ref.offset[0])) < 1e-4
        off_grid = abs(((sinr_db - ours.offset_db + 5) / 0.1) % 1 - 0.5) > 0.01
        if off_grid:
            assert ours.select_mcs(sinr_db) == mcs_ref, k
        fb = int(rng.random() > 0.12)


def test_cqi_rule_and_inverse(table):
    mapper = CqiMapper(table, 1)
    flat = np.ones(624)
    cqis = [mapper.select(flat * 10 ** (s / 10))[0] for s in np.arange(-10, 31, 1.0)]
    assert cqis[0] == 0 and cqis[-1] == 15 and np.all(np.diff(cqis) >= 0)
    for c in range(1, 16):
        m = mapper.mcs_of_cqi[c]
        # the SINR the gNB reads back from a CQI is where that CQI's MCS meets 10 % BLER
        assert table.tbler_scalar(int(m), mapper.sinr_db_of_cqi[c]) <= 0.1
        assert table.tbler_scalar(int(m), mapper.sinr_db_of_cqi[c] - 0.1) > 0.1 or mapper.sinr_db_of_cqi[c] <= -5


def test_probit_fit_recovers_a_known_waterfall(rng):
    from scipy.stats import norm

    from simulator.link_adaptation.calibrate import fit_probit

    snr = np.linspace(1.0, 4.0, 13)
    n = np.full(13, 400.0)
    err = rng.binomial(400, norm.sf((snr - 2.6) / 0.25)).astype(float)
    mu, sigma = fit_probit(snr, err, n)
    assert mu == pytest.approx(2.6, abs=0.05) and sigma == pytest.approx(0.25, abs=0.05)


def test_calibrated_tables_replace_sionna_entries():
    from simulator.link_adaptation.tables import BlerTable

    ours, theirs = BlerTable(1, 12, 2, "airtune"), BlerTable(1, 12, 2, "sionna")
    assert np.array_equal(ours.tbs_bits, theirs.tbs_bits)
    moved = [abs(ours.threshold_db(m, 0.1) - theirs.threshold_db(m, 0.1)) for m in range(5, 28)]
    assert max(moved) > 0.3                      # the coarse tables were off by that much somewhere
