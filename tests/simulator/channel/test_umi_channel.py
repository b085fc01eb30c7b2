"""channel.model umi | uma: Sionna's 38.901 system-level models as a small-scale fading source on the
UE's trajectory (geometry at t = 0): unit power, Doppler from the UE's velocity, LoS, seeds, end to end."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import t as student_t

from simulator.channel.fading import FadingChannel
from simulator.engine import Simulation
from simulator.loader import ConfigError
from simulator.mobility import Mobility
from simulator.schema import CarrierConfig, ChannelConfig, GnbConfig, WaypointMobility
from tests.simulator.channel.precoding_checks import assert_precoded_after_first_report

CARRIER = CarrierConfig(subcarrier_spacing_khz=30, num_prbs=8, carrier_frequency_ghz=3.5)
GNB = GnbConfig(antenna_rows=2, antenna_cols=4)                 # at (0, 0, 10)
SLOT_S = 0.5e-3
START_M = {"umi": (50.0, 0.0, 1.5), "uma": (100.0, 0.0, 1.5)}


def _channel(model="umi", *, kmh=30.0, num_samples=400, seed=0, los=None, heading=(1.0, 0.0, 0.0)):
    """2 UE antennas, the 2x4 gNB, the UE at START_M moving along ``heading`` (one sample per slot)."""
    cfg = ChannelConfig(model=model) if los is None else ChannelConfig(model=model, los=los)
    samples = np.arange(num_samples) if kmh > 0 else np.zeros(num_samples, np.int64)
    return FadingChannel(cfg, CARRIER, 2, kmh / 3.6, samples, seed, gnb=GNB,
                         start_position_m=np.asarray(START_M[model]),
                         velocity_mps=kmh / 3.6 * np.asarray(heading))


@pytest.mark.parametrize("model", ["umi", "uma"])
def test_mean_power_per_antenna_pair_is_one_over_the_fading_not_per_realisation(model):
    """Per seed, the mean of |H|^2 over 1 s at 60 km/h (17 m), all 16 antenna pairs and 96 subcarriers
    estimates the expected power, 1 when the element gains are divided out (Sionna's own is 2-6 per
    pair here); over 8 seeds the mean lies within the 99.9 % Student-t interval of 1 from their spread.
    A static UE's one sample is not normalised per realisation: its power varies across seeds."""
    seeds = range(8)
    power = np.array([np.mean(np.abs(_channel(model, kmh=60.0, num_samples=2000, seed=s).cfr(np.arange(2000)))
                              ** 2) for s in seeds])
    half_width = student_t.ppf(0.9995, len(power) - 1) * power.std(ddof=1) / np.sqrt(len(power))
    assert abs(power.mean() - 1.0) < half_width, (power, half_width)
    assert half_width < 0.25, power                                     # tight enough to tell 2-5 from 1
    static = np.array([np.mean(np.abs(_channel(model, kmh=0.0, num_samples=1, seed=s).cfr_slot(0)) ** 2)
                       for s in seeds])
    assert static.std() > 0.1, static


def test_doppler_follows_the_ue_velocity():
    """The path gains evolve with distance travelled: with the same seed (same LSPs, rays and phases) the
    UE at 60 km/h at sample k equals the UE at 3 km/h at sample 20 k; and the Doppler spectrum at 60 km/h
    lies within the maximum Doppler v / lambda (194.6 Hz) with an RMS spread of its order (the LoS ray,
    along the velocity here, near the maximum), not at 0 Hz."""
    fast = _channel(kmh=60.0, num_samples=100, seed=3).path_gains_of_run()
    slow = _channel(kmh=3.0, num_samples=2000, seed=3).path_gains_of_run()
    np.testing.assert_allclose(fast, slow[::20], rtol=0, atol=2e-5)
    assert not np.allclose(fast[0], fast[10], atol=1e-2)
    n = 2000
    a = _channel(kmh=60.0, num_samples=n, seed=3).path_gains_of_run().reshape(n, -1)
    spectrum = np.abs(np.fft.fft(a * np.hanning(n)[:, None], axis=0)) ** 2
    f_hz = np.fft.fftfreq(n, SLOT_S)[:, None]
    fd_hz = 60 / 3.6 * 3.5e9 / 299792458.0
    assert spectrum[np.abs(f_hz[:, 0]) > 1.05 * fd_hz].sum() < 1e-4 * spectrum.sum()
    rms_hz = np.sqrt((f_hz ** 2 * spectrum).sum() / spectrum.sum())
    assert 0.3 * fd_hz < rms_hz <= fd_hz


def test_same_seed_same_channel_bytes():
    h = _channel(seed=5).cfr(np.arange(400))
    assert h.tobytes() == _channel(seed=5).cfr(np.arange(400)).tobytes()
    assert not np.allclose(h, _channel(seed=6).cfr(np.arange(400)))
    assert np.isfinite(h).all()


def test_los_gives_a_dominant_path():
    """UMi LoS: 12 clusters (16 paths with the two strongest split in three), NLoS 19 (23); the strongest
    path's power over the others' (a K-factor) is > 0 dB on average with LoS (the LoS ray, K ~ 9 dB in
    38.901) and below it without."""
    def k_factor_db(ch):
        p = (np.abs(ch.path_gains_of_run().astype(np.complex128)) ** 2).mean(axis=(0, 1, 2))          # [paths]
        return 10 * np.log10(p.max() / (p.sum() - p.max()))

    los = [_channel(los=True, seed=s) for s in range(6)]
    nlos = [_channel(los=False, seed=s) for s in range(6)]
    assert {ch.path_gains_of_run().shape[-1] for ch in los} == {16} and {ch.path_gains_of_run().shape[-1] for ch in nlos} == {23}
    k_los, k_nlos = np.mean([k_factor_db(c) for c in los]), np.mean([k_factor_db(c) for c in nlos])
    assert k_los > 0 > k_nlos, (k_los, k_nlos)


def test_waypoints_move_along_the_first_segment():
    m = Mobility(WaypointMobility(model="waypoints", speed_kmh=36,
                                  waypoints_m=[(50, 0, 1.5), (50, 0, 1.5), (50, 30, 1.5), (80, 30, 1.5)]))
    np.testing.assert_allclose(m.velocity_mps([0.0, 2.9, 3.1, 100.0]),
                               [[0, 10, 0], [0, 10, 0], [10, 0, 0], [0, 0, 0]], atol=1e-12)


def test_end_to_end_umi_precodes_with_ideal_csi(make_scenario, tmp_path):
    """0.2 s, UMi, a 2x4 gNB, ideal CSI: once the first report has arrived every transmission is
    precoded with a gain over one gNB antenna's power."""
    sc = make_scenario({"channel": {"model": "umi"}, "carrier.num_prbs": 8, "gnb": {"antenna_rows": 2,
                                                                                  "antenna_cols": 4},
                        "csi_rs.report": {"kind": "ideal"}, "ues.0.mobility.start_m": [50, 0, 1.5]})
    Simulation(sc, tmp_path / "run").run()
    assert_precoded_after_first_report(tmp_path / "run")


def test_bad_inputs_name_the_field(make_scenario):
    start = {"ues.0.mobility.start_m": [50, 0, 1.5]}
    with pytest.raises(ConfigError, match=r"channel.profile: does not apply to umi"):
        make_scenario({"channel": {"model": "umi", "profile": "C"}, **start})
    with pytest.raises(ConfigError, match=r"channel.delay_spread_ns: does not apply to uma"):
        make_scenario({"channel": {"model": "uma", "delay_spread_ns": 300}, "ues.0.mobility.start_m": [100, 0, 1.5]})
    with pytest.raises(ConfigError, match=r"channel.los: applies to umi/uma only \(model is tdl\)"):
        make_scenario({"channel": {"model": "tdl", "los": True}})
    with pytest.raises(ConfigError, match=r"ues.0.mobility.start_m: channel.model umi needs the UE at >= 10.0 m "
                                          r"from the gNB .* \(got 0.0 m\)"):
        make_scenario({"channel": {"model": "umi"}})
    assert make_scenario({"channel": {"model": "umi", "los": False}, **start}).channel.los is False
    with pytest.raises(ValueError, match="needs the UE's start_position_m and velocity_mps"):
        FadingChannel(ChannelConfig(model="umi"), CARRIER, 1, 1.0, np.arange(4), 0, gnb=GNB)
