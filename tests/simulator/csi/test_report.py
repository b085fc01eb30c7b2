"""CSI reports (``simulator.csi.report``): the ideal report of a one-antenna UE is computed from the
path domain (``FadingChannel.subband_rows``) without the full response; its precoder and the logged
precoder quality must equal the ones of the full response."""
from __future__ import annotations

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
        assert got[0] < 0.99 and got[1] > 0.05
        np.testing.assert_allclose(got, want, rtol=1e-4)
