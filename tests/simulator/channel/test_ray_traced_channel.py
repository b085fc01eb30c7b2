"""channel.model ray_traced: a UE's paths traced in a Sionna RT scene at anchors along its drive (in the
ray-tracing worker), their phases following the UE in between: known answers at the anchors and for the
line of sight's Doppler, continuity across anchors, same bytes, end to end, field errors."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.channel.fading import FadingChannel
from simulator.channel.rt_worker import run_in_worker
from simulator.engine import Simulation
from simulator.loader import ConfigError
from simulator.mobility import Mobility
from simulator.schema import CarrierConfig, ChannelConfig, GnbConfig, LinearMobility
from tests.simulator.channel.precoding_checks import assert_precoded_after_first_report

CARRIER = CarrierConfig(subcarrier_spacing_khz=30, num_prbs=8, carrier_frequency_ghz=3.5)
SLOT_S = 0.5e-3
LAMBDA_M = 299_792_458.0 / 3.5e9
# simple_street_canyon: a street along x between buildings at |y| >= 10 (open at the cross streets x ~ -30,
# 30); the gNB 20 m up at the west crossing; from x = 0 on the UE sees the walls' reflections (8 paths)
CANYON = {"scene": "simple_street_canyon", "max_depth": 2, "samples_per_src": 20_000}
CANYON_GNB = (-30.0, 0.0, 20.0)


def _drive(start_m, kmh=30.0, heading_deg=0.0) -> Mobility:
    return Mobility(LinearMobility(model="linear", speed_kmh=kmh, start_m=start_m, heading_deg=heading_deg))


def _channel(mob: Mobility, num_samples: int, *, rt=CANYON, rows=1, cols=2, polarization="single",
             position=CANYON_GNB, ue_ant=1, seed=3) -> FadingChannel:
    gnb = GnbConfig(antenna_rows=rows, antenna_cols=cols, polarization=polarization, position_m=position)
    samples = np.arange(num_samples) if mob.speed_mps > 0 else np.zeros(num_samples, np.int64)
    return FadingChannel(ChannelConfig(model="ray_traced", ray_traced=rt), CARRIER, ue_ant, mob.speed_mps, samples,
                         seed, gnb=gnb, mobility=mob, ue_field="ues.0.mobility")


def _cfg(rt: dict):
    """The channel.ray_traced section of ``rt``."""
    return ChannelConfig(model="ray_traced", ray_traced=rt).ray_traced


def _direct_cfr(ch: FadingChannel, rt: dict, gnb: GnbConfig, positions_m: np.ndarray, seed: int) -> np.ndarray:
    """Sionna's own Paths.cfr at the positions, traced alone: [n, gnb_ant, sc] (UE antenna 0)."""
    array = {"spacing_wavelengths": gnb.element_spacing_wavelengths, "dual_polarized": gnb.polarization == "dual"}
    return run_in_worker("simulator.channel.ray_tracer:trace_cfr", _cfg(rt), 3.5e9, gnb.antenna_rows, gnb.antenna_cols,
                         gnb.position_m, seed, array, positions_m, ch._freqs_hz)


@pytest.mark.parametrize("polarization", ["single", "dual"])
def test_at_each_anchor_the_channel_is_the_scene_traced_there(polarization):
    """At every anchor (every 1 m = 240 slots at 30 km/h) the channel is Sionna's Paths.cfr of a trace at that
    position alone, up to one complex factor: a common phase (Sionna counts the carrier phase from the first
    path; here it runs with the absolute delay) and the UE's normalisation, whose modulus is the same at
    every anchor (one constant per UE). 2x2 gNB, single or cross polarised (8 ports)."""
    mob = _drive((2.0, 2.0, 1.5))
    ch = _channel(mob, 1000, rows=2, cols=2, polarization=polarization)
    anchors = np.arange(0, 1000, 240)
    positions = mob.position_m(anchors * SLOT_S)
    gnb = GnbConfig(antenna_rows=2, antenna_cols=2, polarization=polarization, position_m=CANYON_GNB)
    direct = _direct_cfr(ch, CANYON, gnb, positions, seed=3)                       # [5, ports, sc]
    h = ch.cfr(anchors)[:, 0]                                                      # [5, ports, sc]
    assert h.shape == direct.shape == (5, gnb.num_antennas, 96)
    ratio = np.array([np.vdot(d, x) / np.vdot(d, d) for d, x in zip(direct, h)])  # least-squares factor
    for x, d, r in zip(h, direct, ratio):
        assert np.linalg.norm(x - r * d) < 1e-4 * np.linalg.norm(x)              # float32 rounding
    np.testing.assert_allclose(np.abs(ratio), np.abs(ratio[0]), rtol=1e-4)
    assert np.ptp(np.angle(ratio)) > 0.1                                           # the phases do differ
    assert not np.allclose(h[0], h[1], atol=0.1)                                   # the anchors differ too


def test_line_of_sight_phase_turns_at_its_doppler_shift_across_anchors():
    """simple_reflector without reflections (max_depth 0): one path, the line of sight from the gNB at (0, 0, 10).
    Driving at 30 km/h at 60 degrees from x past (20, 0, 1.5), the channel's phase advances every slot by
    2 pi f_D slot, f_D = v cos(angle between the drive and the gNB direction) / lambda from the geometry, within
    1e-3 rad, inside the segments and across the anchors alike; Sionna's Doppler at the anchors is that closed
    form; its modulus is constant within a segment."""
    rt = {"scene": "simple_reflector", "max_depth": 0, "samples_per_src": 10_000}
    mob = _drive((20.0, 0.0, 1.5), heading_deg=60.0)
    n = 1000
    ch = _channel(mob, n, rt=rt, rows=1, cols=1, position=(0.0, 0.0, 10.0))
    h = ch.cfr(np.arange(n))[:, 0, 0]                                              # [n, sc]
    assert np.allclose(h, h[:, :1])                                                # one path at delay 0: flat
    step = np.angle(h[1:, 0] * np.conj(h[:-1, 0]))                                 # [n - 1]
    x = mob.position_m((np.arange(n - 1) + 0.5) * SLOT_S)                          # midway between the slots
    to_gnb = (np.array([0.0, 0.0, 10.0]) - x) / np.linalg.norm(np.array([0.0, 0.0, 10.0]) - x, axis=1)[:, None]
    fd_hz = mob.velocity_mps([0.0])[0] @ to_gnb.T / LAMBDA_M
    assert 30 < -fd_hz.max() < -fd_hz.min() - 5 < 30 / 3.6 / LAMBDA_M           # moving away, and turning
    np.testing.assert_allclose(step, 2 * np.pi * fd_hz * SLOT_S, rtol=0, atol=1e-3)
    anchors = np.arange(0, n, 240)
    traced = run_in_worker("simulator.channel.ray_tracer:trace_paths", _cfg(rt), 3.5e9, 1, 1, (0.0, 0.0, 10.0),
                           3, {}, mob.position_m(anchors * SLOT_S), mob.velocity_mps(anchors * SLOT_S))
    assert list(traced.num_paths) == [1] * len(anchors)
    p = mob.position_m(anchors * SLOT_S)
    u = (np.array([0.0, 0.0, 10.0]) - p) / np.linalg.norm(np.array([0.0, 0.0, 10.0]) - p, axis=1)[:, None]
    np.testing.assert_allclose(traced.doppler_hz[:, 0], u @ mob.velocity_mps([0.0])[0] / LAMBDA_M, rtol=1e-4)
    mod = np.abs(h[:, 0])
    np.testing.assert_allclose(mod[:240], mod[0], rtol=1e-6)
    assert not np.isclose(mod[240], mod[0], rtol=1e-4)                             # re-anchored: 1/d moved on


@pytest.mark.parametrize("start_m, heading_deg", [((-45.0, 5.0, 1.5), 0.0), ((-25.0, -8.0, 1.5), 90.0)])
def test_the_channel_is_continuous_across_anchors(start_m, heading_deg):
    """Two drives through the canyon (2x2 gNB, two UE antennas): towards the gNB along the street with 8 paths,
    and across it 5 m from the gNB with 2: the relative change |H_k+1 - H_k| / |H_k| from the last slot of a
    segment to the first of the next is of the order of the slot-to-slot change inside the segments (not a
    jump: within 2x their largest). Phases turning at the anchor's Doppler alone, without the wavefront's
    curvature, make jumps of 6x and 14x their largest here."""
    n = 1440
    h = _channel(_drive(start_m, heading_deg=heading_deg), n, rows=2, cols=2, ue_ant=2).cfr(np.arange(n))
    h = h.reshape(n, -1).astype(np.complex128)
    step = np.linalg.norm(np.diff(h, axis=0), axis=1) / np.linalg.norm(h[:-1], axis=1)      # [n - 1]
    boundary = np.arange(240, n, 240) - 1                                          # the change into slot 240 j
    inside = np.delete(step, boundary)
    assert step[boundary].max() < 2 * inside.max(), (step[boundary], np.percentile(inside, [50, 99, 100]))
    assert inside.max() > 0.05                                                     # the channel does move


def test_same_seed_same_bytes_and_mean_power_one():
    mob = _drive((2.0, 2.0, 1.5))
    a = _channel(mob, 600, rows=2, cols=2).cfr(np.arange(600))
    assert a.tobytes() == _channel(mob, 600, rows=2, cols=2).cfr(np.arange(600)).tobytes()
    assert np.isfinite(a).all()
    assert 0.5 < np.mean(np.abs(a) ** 2) < 2.0                                     # unit path power over the drive


def test_static_ue_sees_a_frozen_channel():
    ch = _channel(_drive((5.0, 2.0, 1.5), kmh=0.0), 50)
    h = ch.cfr(np.arange(50))
    assert np.array_equal(h[0], h[49]) and np.abs(h).max() > 0


def test_end_to_end_precodes_with_ideal_csi(make_scenario, tmp_path):
    """0.2 s in the canyon, a 2x4 gNB, ideal CSI: once the first report has arrived every transmission is
    precoded with a gain over one gNB antenna's power."""
    sc = make_scenario({"channel": {"model": "ray_traced", "ray_traced": CANYON}, "carrier.num_prbs": 8,
                        "gnb": {"antenna_rows": 2, "antenna_cols": 4, "position_m": list(CANYON_GNB)},
                        "csi_rs.report": {"kind": "ideal"}, "ues.0.mobility.start_m": [2, 2, 1.5]})
    Simulation(sc, tmp_path / "run").run()
    assert_precoded_after_first_report(tmp_path / "run")


def test_bad_inputs_name_the_field(make_scenario, tmp_path):
    rt = {"channel": {"model": "ray_traced", "ray_traced": CANYON}}
    with pytest.raises(ConfigError, match=r"channel.ray_traced: model ray_traced needs its settings"):
        make_scenario({"channel": {"model": "ray_traced"}})
    with pytest.raises(ConfigError, match=r"channel.profile: does not apply to ray_traced"):
        make_scenario({"channel": {"model": "ray_traced", "ray_traced": CANYON, "profile": "C"}})
    with pytest.raises(ConfigError, match=r"channel.los: does not apply to ray_traced"):
        make_scenario({"channel": {"model": "ray_traced", "ray_traced": CANYON, "los": True}})
    with pytest.raises(ConfigError, match=r"channel.ray_traced: applies to model ray_traced only \(model is cdl\)"):
        make_scenario({"channel": {"model": "cdl", "profile": "C", "ray_traced": CANYON}})
    with pytest.raises(ConfigError, match=r"channel.ray_traced.scene: .*'simple_street_canyon'"):
        make_scenario({"channel": {"model": "ray_traced", "ray_traced": {"scene": "paris"}}})
    with pytest.raises(ConfigError, match=r"channel.ray_traced.anchor_spacing_m: .*greater than 0"):
        make_scenario({"channel": {"model": "ray_traced", "ray_traced": {**CANYON, "anchor_spacing_m": 0}}})
    with pytest.raises(ConfigError, match=r"snr.model: pathloss does not go with channel.model ray_traced"):
        make_scenario({**rt, "snr": {"model": "pathloss"}})
    with pytest.raises(ValueError, match="channel model ray_traced needs the UE's mobility"):
        FadingChannel(ChannelConfig(model="ray_traced", ray_traced=CANYON), CARRIER, 1, 1.0, np.arange(4), 0)
    # the second UE starts inside a building (x = 0, y = 20): without reflections nothing reaches it
    sc = make_scenario({"channel": {"model": "ray_traced", "ray_traced": {**CANYON, "max_depth": 0}},
                        "gnb.position_m": list(CANYON_GNB),
                        "ues": [{"id": 0, "mobility": {"model": "linear", "speed_kmh": 30, "start_m": [2, 2, 1.5]}},
                                {"id": 1, "mobility": {"model": "static", "position_m": [0, 20, 1.5]}}]})
    with pytest.raises(ValueError, match=r"ues.1.mobility: no path reaches the UE at position_m \[0.0, 20.0, 1.5\] "
                                         r"\(t = 0.000 s\) in scene simple_street_canyon"):
        Simulation(sc, tmp_path / "run").run()
