"""CSI reports (``simulator.csi.report``): the ideal report of a one-antenna UE comes from the path domain
(``FadingChannel.subband_rows``) without the full response, with the precoder and logged quality of the full
response; eType II reports beat Type I, cost their 38.212 bits, and choose their rank."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.channel.fading import FadingChannel
from simulator.csi.report import CsiMeasurement, CsiReporter, Precoder, precoder_quality
from simulator.phy.precoding import dominant_precoder
from simulator.schema import CarrierConfig, ChannelConfig, CsiReportConfig, GnbConfig

CARRIER = CarrierConfig(subcarrier_spacing_khz=30, num_prbs=11, carrier_frequency_ghz=3.5)
GNB = GnbConfig(antenna_rows=2, antenna_cols=4)


@pytest.fixture(scope="module")
def channel():
    return FadingChannel(ChannelConfig(model="umi"), CARRIER, 1, 5.0, np.arange(20), seed=8, gnb=GNB,
                         start_position_m=np.array([50.0, -20.0, 1.5]), velocity_mps=np.array([5.0, 0.0, 0.0]))


def test_ideal_report_of_a_one_antenna_ue_equals_the_full_response(channel):
    reporter = CsiReporter(CsiReportConfig(kind="ideal", subband_prbs=4), GNB, CARRIER.num_prbs)   # 4, 4, 3 PRBs
    for slot in (0, 19):
        m = reporter.measure(channel, slot, 10.0)
        assert m.h is None and m.rows is not None and m.bits == 0
        h = channel.cfr_slot(slot)
        sb = np.arange(h.shape[-1]) // 48
        np.testing.assert_allclose(m.precoder.w, dominant_precoder(h, sb), atol=1e-5)
        full = CsiMeasurement(m.precoder, 0, h=h)
        np.testing.assert_allclose(precoder_quality(m), precoder_quality(full), atol=1e-5)
        # a precoder that is not the ideal one: its SGCS and loss on both routes
        other = Precoder(np.roll(m.precoder.w, 1, axis=0), 48)
        got = precoder_quality(CsiMeasurement(other, 0, rows=m.rows))
        want = precoder_quality(CsiMeasurement(other, 0, h=h))
        assert got[0] < 0.99 and got[1] <= got[0] and got[2] > 0.05
        np.testing.assert_allclose(got, want, rtol=1e-4)


def test_etype2_report_beats_type1_and_costs_its_bits():
    """An eType II report on a UMi channel (8 x 4 single-polarised, 13 subbands): its precoder is closer to
    the ideal one than Type I's (mean SGCS over 10 occasions), more so with more beams, and its bits are
    38.212's beyond the CQI."""
    from simulator.csi import etype2
    from simulator.schema import GnbConfig as G

    gnb = G(antenna_rows=4, antenna_cols=8)
    carrier = CarrierConfig(subcarrier_spacing_khz=30, num_prbs=52, carrier_frequency_ghz=3.5)
    ch = FadingChannel(ChannelConfig(model="umi", los=False), carrier, 1, 5.0, np.arange(10), seed=4, gnb=gnb,
                       start_position_m=np.array([60.0, 30.0, 1.5]), velocity_mps=np.array([0.0, 5.0, 0.0]))
    reporters = {name: CsiReporter(CsiReportConfig(kind=kind, param_combination=pc), gnb, 52)
                 for name, kind, pc in [("type1", "type1", 4), ("pc1", "etype2", 1), ("pc8", "etype2", 8)]}
    mean = {}
    for name, rep in reporters.items():
        vals = []
        for slot in range(10):
            m = rep.measure(ch, slot, 10.0)
            vals.append(precoder_quality(m)[0])
            if name == "type1":
                assert m.bits == rep.bits[1] > 0
            else:
                pmi = etype2.select_pmi(rep.etype2_cfg, ch.subband_rows(slot, 48), 1)
                assert m.bits == etype2.report_bits(rep.etype2_cfg, pmi, 1).total - 4 > 0
                np.testing.assert_allclose(np.linalg.norm(m.precoder.w, axis=-1), 1.0, atol=1e-12)
        mean[name] = np.mean(vals)
    assert mean["type1"] < mean["pc1"] < mean["pc8"], mean


def test_etype2_rank_two_report_on_two_ue_antennas():
    """max_rank 2 with two UE antennas: the reported rank's precoder (one or two unit-norm columns) and
    the bits of that rank's PMI (the K_NZ indicator and per-layer fields of 38.212), the RI costing 1 bit."""
    from simulator.csi import etype2

    gnb = GnbConfig(antenna_rows=2, antenna_cols=4, polarization="dual")                  # 16 ports
    carrier = CarrierConfig(subcarrier_spacing_khz=30, num_prbs=24, carrier_frequency_ghz=3.5)
    ch = FadingChannel(ChannelConfig(model="umi", los=False), carrier, 2, 3.0, np.arange(5), seed=6, gnb=gnb,
                       start_position_m=np.array([50.0, 20.0, 1.5]), velocity_mps=np.array([3.0, 0.0, 0.0]))
    rep = CsiReporter(CsiReportConfig(kind="etype2", param_combination=4, max_rank=2), gnb, 24)   # 6 subbands
    ranks = set()
    for slot, snr_db in ((0, 25.0), (4, -5.0)):
        m = rep.measure(ch, slot, snr_db)
        rank = m.precoder.layers
        ranks.add(rank)
        w = m.precoder.w if rank == 2 else m.precoder.w[..., None]
        np.testing.assert_allclose(np.linalg.norm(w, axis=1), 1.0, atol=1e-12)
        pmi = etype2.select_pmi(rep.etype2_cfg, ch.subband_rows(slot, 48), rank)
        bits = etype2.report_bits(rep.etype2_cfg, pmi, 2)
        assert m.bits == bits.total - 4 and bits.part1 == 1 + 4 + math.ceil(math.log2(rep.etype2_cfg.k0 * rank))
    assert ranks == {1, 2}                                   # two layers at high SNR, one at low
