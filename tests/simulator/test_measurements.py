"""Channel measurements behind the BLER predictor's features: known answers."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.channel.fading import FadingChannel
from simulator.measurements import capacity_bps_hz, doppler_hz, rms_delay_spread_ns, wideband_snr_db
from simulator.schema import CarrierConfig, ChannelConfig

SCS = 30e3
N = 624


def _two_tap(delay_bins: int, p1: float) -> np.ndarray:
    k = np.arange(N)
    return (np.sqrt(1 - p1) + np.sqrt(p1) * np.exp(-2j * np.pi * k * delay_bins / N))[None, :]


def test_delay_spread_of_a_two_tap_channel():
    # taps at 0 and tau with powers (1-p, p): rms = tau * sqrt(p (1 - p))
    tau_ns = 10 / (N * SCS) * 1e9
    for p in (0.5, 0.2):
        assert rms_delay_spread_ns(_two_tap(10, p), SCS) == pytest.approx(tau_ns * np.sqrt(p * (1 - p)), rel=1e-6)
    assert rms_delay_spread_ns(np.ones((1, N)), SCS) == pytest.approx(0.0, abs=1e-6)


def test_flat_channel_snr_and_capacity():
    h = np.ones((2, N)) / np.sqrt(2)
    assert wideband_snr_db(h, 10.0) == pytest.approx(10.0)
    assert capacity_bps_hz(h, 10.0) == pytest.approx(np.log2(11.0))


@pytest.mark.parametrize("speed_kmh", [3.0, 30.0, 120.0])
def test_doppler_estimate_tracks_the_ue_speed(speed_kmh):
    carrier = CarrierConfig(subcarrier_spacing_khz=30, num_prbs=52)
    speed = speed_kmh / 3.6
    fd = speed * 3.5e9 / 3e8
    ch = FadingChannel(ChannelConfig(model="tdl", profile="A", delay_spread_ns=30), carrier, 2, speed,
                       np.arange(4000), seed=3)
    est = [doppler_hz(ch.cfr_slot(s)[:, 0], ch.cfr_slot(s + 1)[:, 0], 0.5e-3) for s in range(0, 3960, 40)]
    assert np.median(est) == pytest.approx(fd, rel=0.3)
    assert doppler_hz(ch.cfr_slot(5)[:, 0], ch.cfr_slot(5)[:, 0], 0.5e-3) == 0.0
