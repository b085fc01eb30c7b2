"""End-to-end runs of tiny scenarios: event order, determinism, HARQ, OLLA, logs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from simulator.engine import Simulation
from tests.conftest import REPO
from tests.simulator.link_adaptation.olla_checks import assert_offsets_follow_feedback


def run(scenario, out):
    summary = Simulation(scenario, out).run()
    slots = pd.read_parquet(out / "slots.parquet")
    periods = pd.read_parquet(out / "periods.parquet")
    return summary, slots, periods


def test_exact_event_trace(make_scenario, tmp_path):
    """CSI-RS every 2 ms, report 1 ms later + 4 us on the pipe + 0.5 ms delay, slots every 500 us,
    ACK/NACK k1 = 2 slots after each transmission; a slot starts after every other event of its
    instant (the report goes on the pipe at 1000 us before the slot of 1000 us)."""
    sc = make_scenario({"duration_s": 0.004, "csi_rs.period_ms": 2, "csi_rs.report_delay_ms": 1,
                        "feedback": {"capacity_kbps": 1000, "delay_ms": 0.5}, "harq.k1_slots": 2,
                        "snr.snr_db": 25})
    sim = Simulation(sc, tmp_path)
    trace = []
    sim.trace = trace
    sim.run()
    kinds = [(t, kind) for t, kind, *_ in trace]
    expected = [
        (0, "csi_rs"), (0, "pdsch"),
        (500, "pdsch"),
        (1000, "report_sent"), (1000, "feedback_start"), (1000, "harq_feedback"), (1000, "pdsch"),
        (1500, "harq_feedback"), (1500, "pdsch"),
        (2000, "csi_rs"), (2000, "harq_feedback"), (2000, "pdsch"),
        (2500, "harq_feedback"), (2500, "pdsch"),
        (3000, "report_sent"), (3000, "feedback_start"), (3000, "harq_feedback"), (3000, "pdsch"),
        (3500, "harq_feedback"), (3500, "pdsch"),
        (4000, "harq_feedback"), (4500, "harq_feedback"),
    ]
    assert kinds == expected
    arrivals = [rest[-1] for t, kind, *rest in trace if kind == "feedback_start"]
    assert arrivals == [1000 + 4 + 500, 3000 + 4 + 500]
    slots = pd.read_parquet(tmp_path / "slots.parquet")
    assert slots.t_us.tolist() == [500 * k for k in range(8)]
    assert (slots.ack_t_us - slots.t_us == 1000).all()
    cqi0 = [e[-1] for e in trace if e[1] == "csi_rs"][0]
    # slots 0-3 start before the first report arrives (1504 us); slots 4-7 use it
    assert slots.cqi_used.tolist() == [0, 0, 0, 0] + [cqi0] * 4
    periods = pd.read_parquet(tmp_path / "periods.parquet")
    assert periods.t_us.tolist() == [0, 2000] and periods.report_arrival_t_us.tolist() == [1504, 3504]
    # feedback counted in the period it arrives in: period 0 gets slots 0-1 (ACK at 1000, 1500)
    assert (periods.n_ack + periods.n_nack).tolist() == [2, 4]


def test_same_seed_same_logs_other_seed_differs(make_scenario, tmp_path):
    sc = make_scenario({"duration_s": 0.3})
    _, a, pa = run(sc, tmp_path / "a")
    _, b, pb = run(sc, tmp_path / "b")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(pa, pb)
    _, c, _ = run(make_scenario({"duration_s": 0.3, "seed": 8}), tmp_path / "c")
    assert not a[["mcs", "ack", "sinr_eff_db"]].equals(c[["mcs", "ack", "sinr_eff_db"]])


def test_harq_stops_at_max_transmissions(make_scenario, tmp_path):
    sc = make_scenario({"duration_s": 1.0, "harq.max_transmissions": 2,
                        "link_adaptation.olla.bler_target": 0.6, "link_adaptation.olla.step_up_db": 1.0})
    summary, slots, _ = run(sc, tmp_path)
    assert slots.tx_round.max() == 2
    first = slots[slots.tx_round == 1]
    assert 0.45 < 1 - first.ack.mean() < 0.75            # OLLA steers toward the 60 % target
    # every NACKed first transmission is retransmitted once on the same HARQ process and MCS
    retx = slots[slots.tx_round == 2]
    nacked = first[~first.ack]
    assert len(retx) in (len(nacked), len(nacked) - 1)   # the last one may fall after the run
    by_proc = slots.sort_values(["harq_process", "t_us"]).reset_index(drop=True)
    nxt = by_proc.groupby("harq_process").shift(-1)
    after_nack = (by_proc.tx_round == 1) & ~by_proc.ack & nxt.t_us.notna()
    assert (nxt.tx_round[after_nack] == 2).all() and (nxt.mcs[after_nack] == by_proc.mcs[after_nack]).all()
    # the NACK arrives k1 = 2 slots later and the retransmission goes out in that slot
    assert (nxt.t_us[after_nack] - by_proc.t_us[after_nack] == 1000).all()
    assert summary.residual_bler < summary.first_tx_bler
    # residual BLER = TBs still failed after both transmissions
    assert summary.residual_bler == pytest.approx((~retx.ack).sum() / (first.ack.sum() + len(retx)), abs=2e-3)


def test_olla_holds_first_transmission_bler_on_20s_tdl(make_scenario, tmp_path):
    sc = make_scenario({"duration_s": 20.0, "carrier.num_prbs": 52, "csi_rs.period_ms": 20})
    summary, slots, periods = run(sc, tmp_path)
    assert len(slots[slots.tx_round == 1]) > 35000
    assert summary.first_tx_bler == pytest.approx(0.10, abs=0.02)
    assert summary.residual_bler < 0.01
    assert_offsets_follow_feedback(slots, 0.1, 0.5)
    assert periods.cqi_table.between(1, 15).all()


@pytest.mark.parametrize("overrides", [
    {"snr": {"model": "schedule", "points": [[0, 0], [0.3, 25]]}},
    {"snr": {"model": "pathloss", "scenario": "uma", "los": False}, "gnb": {"position_m": [0, 0, 25]},
     "ues.0.mobility": {"model": "waypoints", "speed_kmh": 50, "waypoints_m": [[20, 0, 1.5], [120, 0, 1.5]]}},
    {"channel": {"model": "cdl", "profile": "A", "delay_spread_ns": 100}, "phy.num_ue_antennas": 2,
     "ues": [{"id": 0}, {"id": 4, "mobility": {"model": "linear", "speed_kmh": 3}}]},
])
def test_snr_mobility_and_channel_variants_run(make_scenario, tmp_path, overrides):
    sc = make_scenario({"duration_s": 0.3, **overrides})
    summary, slots, periods = run(sc, tmp_path)
    assert summary.throughput_mbps > 0
    assert set(slots.ue) == {u.id for u in sc.ues}
    if sc.snr.model == "schedule":
        early, late = slots[slots.t_us < 50_000], slots[slots.t_us > 250_000]
        assert late.mcs.mean() > early.mcs.mean() + 5


def test_manifest_and_empty_updates(make_scenario, tmp_path):
    sc = make_scenario()
    run(sc, tmp_path)
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["status"] == "complete" and man["seed"] == 7 and man["scenario"]["name"] == "tiny"
    assert man["summary"]["throughput_mbps"] > 0 and man["versions"]["sionna-no-rt"].startswith("1.2")
    upd = pd.read_parquet(tmp_path / "updates.parquet")
    assert len(upd) == 0 and "update_bits" in upd.columns


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "simulator.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_killed_run_leaves_readable_partial_log_and_rerun_rules(tmp_path):
    out = tmp_path / "run"
    quick = str(REPO / "scenarios" / "quickstart.yaml")
    p = _cli("run", quick, "--out", str(out), "--no-progress", "--set", "duration_s=60",
             "--set", "output.flush_rows=2000")
    parts = out / "slots.parquet"
    deadline = time.time() + 400   # slow starts on a loaded machine
    while time.time() < deadline and len(list(parts.glob("part-*.parquet"))) < 3:
        time.sleep(0.2)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    slots = pd.read_parquet(parts)
    # complete parts only, in order, without holes: slots 0..n-1 (a part is 2,000 rows or 5 s of rows)
    assert len(slots) >= 2000 and (slots.slot.to_numpy() == np.arange(len(slots))).all()
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"

    # a different scenario into the same folder is refused (exit 2), --overwrite replaces it
    p = _cli("run", quick, "--out", str(out), "--set", "duration_s=0.05")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "different scenario" in err and "--overwrite" in err
    assert "differs in duration_s: 60.0 -> 0.05" in err                 # says what differs
    p = _cli("run", quick, "--out", str(out), "--set", "duration_s=0.05", "--overwrite")
    stdout, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "throughput" in stdout and "first-tx BLER" in stdout and "mean MCS" in stdout
    assert len(pd.read_parquet(out / "slots.parquet")) == 100


def test_sigterm_marks_interrupted(tmp_path):
    out = tmp_path / "run"
    p = _cli("run", str(REPO / "scenarios" / "quickstart.yaml"), "--out", str(out), "--no-progress",
             "--set", "duration_s=200", "--set", "output.flush_rows=1000")   # ~8 s of event loop: killed long before its end
    # generous: on a loaded 2-core machine the TensorFlow import and setup alone can take minutes,
    # and a SIGTERM before the run starts would test nothing
    deadline = time.time() + 400
    while time.time() < deadline and len(list((out / "slots.parquet").glob("part-*"))) < 2:
        time.sleep(0.2)
    assert len(list((out / "slots.parquet").glob("part-*"))) >= 2, "the run wrote no parts in 400 s"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "interrupted"
    assert len(pd.read_parquet(out / "slots.parquet")) > 0


def test_bler_predictor_with_lighttune_and_cqi_tune_in_the_loop(make_scenario, tmp_path):
    sc = make_scenario({"duration_s": 1.0, "csi_rs.period_ms": 10,
                        "models": {"bler_predictor": {"type": "ff_bler", "online": {"delta": 0.3}}},
                        "link_adaptation.backoff": {"kind": "cqi_tune", "tau_bler": 0.9}})
    run(sc, tmp_path)
    periods = pd.read_parquet(tmp_path / "periods.parquet")
    updates = pd.read_parquet(tmp_path / "updates.parquet")
    assert periods.bler_predicted.between(0, 1).all()
    # CQI-Tune backs off at most one step (CQI_min = CQI_table - 1) and only when predicting >= 0.9
    back = periods.cqi_table - periods.cqi_reported
    assert back.isin([0, 1]).all()
    assert (back == 1).any()                              # and it does back off here
    # an update fires exactly when |predicted - observed| >= delta, and is logged once
    err = (periods.bler_predicted - periods.bler_observed).abs()
    assert periods.fine_tuned.equals((err >= 0.3 - 1e-6) & periods.bler_observed.notna())
    assert len(updates) == periods.fine_tuned.sum() > 0
    assert (updates.model == "ff_bler").all() and (updates.compute_us >= 1).all()
    # an update made when a period closes takes effect at the first CSI-RS occasion after its
    # compute time (-1: the run ended first)
    occasions = np.sort(periods.t_us.to_numpy())
    ready = (updates.t_us + updates.compute_us).to_numpy()
    nxt = np.searchsorted(occasions, ready)
    expected = np.where(nxt < len(occasions), occasions[np.minimum(nxt, len(occasions) - 1)], -1)
    np.testing.assert_array_equal(updates.applied_t_us.to_numpy(), expected)
    assert (expected[:-1] > 0).all()
    # the logged trigger value is the period's error, and each update reports the state it touched
    fired = err[periods.fine_tuned].to_numpy()
    np.testing.assert_allclose(np.sort(updates.trigger_value.to_numpy()), np.sort(fired), atol=1e-6)
    assert (updates.state_bytes > 0).all()
    assert set(updates.t_us) <= set(periods.t_end_us[periods.fine_tuned])


def test_lighttune_runs_give_byte_identical_logs(make_scenario, tmp_path):
    """Compute times are modelled, never measured: the same scenario and seed give the same bytes."""
    sc = make_scenario({"duration_s": 0.5, "csi_rs.period_ms": 10,
                        "models": {"bler_predictor": {"type": "ff_bler", "online": {"delta": 0.3}}}})
    for name in ("a", "b"):
        Simulation(sc, tmp_path / name).run()
    for table in ("updates", "slots", "periods"):
        assert (tmp_path / "a" / f"{table}.parquet").read_bytes() == (tmp_path / "b" / f"{table}.parquet").read_bytes()
    assert len(pd.read_parquet(tmp_path / "a" / "updates.parquet")) > 0


def test_bler_predictor_config_errors_name_their_field(make_scenario):
    from simulator.loader import ConfigError

    with pytest.raises(ConfigError, match=r"models.bler_predictor.type: unknown model type 'ff_blur'; valid: .*ff_bler"):
        make_scenario({"models": {"bler_predictor": {"type": "ff_blur"}}})
    with pytest.raises(ConfigError, match=r"models.bler_predictor.checkpoint: no such checkpoint file"):
        make_scenario({"models": {"bler_predictor": {"checkpoint": "nope.json"}}})
    with pytest.raises(ConfigError, match=r"link_adaptation.backoff.kind: cqi_tune needs models.bler_predictor"):
        make_scenario({"link_adaptation.backoff": {"kind": "cqi_tune"}})


def test_cqi_exploration_logs_features_for_training_data(make_scenario, tmp_path):
    from models.base import BLER_FEATURES

    sc = make_scenario({"duration_s": 1.0, "csi_rs.period_ms": 10, "link_adaptation.olla.enabled": False,
                        "link_adaptation.cqi_exploration": {"max_offset": 3}})
    run(sc, tmp_path)
    periods = pd.read_parquet(tmp_path / "periods.parquet")
    offset = periods.cqi_reported - periods.cqi_table
    assert offset.between(-3, 3).all() and offset.nunique() >= 5
    assert periods.cqi_reported.between(1, 15).all()
    feats = np.stack(periods.features.to_numpy())
    assert feats.shape == (len(periods), len(BLER_FEATURES))
    assert (feats[:, BLER_FEATURES.index("cqi")] == periods.cqi_reported).all()
    # reporting above the table's CQI raises the observed BLER, below lowers it
    assert periods.bler_observed[offset > 0].mean() > periods.bler_observed[offset < 0].mean() + 0.2
    plain = tmp_path / "plain"
    run(make_scenario(), plain)
    assert pd.read_parquet(plain / "periods.parquet").features.isna().all()


def test_csi_rs_measurement_error_biases_the_cqi_and_is_logged(make_scenario, tmp_path):
    base = {"duration_s": 1.0, "csi_rs.period_ms": 5}
    runs = {}
    for name, over in {"exact": {}, "optimistic": {"csi_rs.sinr_error_bias_db": 6.0},
                       "noisy": {"csi_rs.sinr_error_std_db": 3.0}}.items():
        run(make_scenario({**base, **over}), tmp_path / name)
        runs[name] = pd.read_parquet(tmp_path / name / "periods.parquet")
    exact, opt, noisy = runs["exact"], runs["optimistic"], runs["noisy"]
    assert (exact.sinr_error_db == 0).all() and (opt.sinr_error_db == 6.0).all()
    # same channel and true SNR; the UE believes 6 dB more, so its table CQI is higher
    np.testing.assert_array_equal(exact.snr_db, opt.snr_db)
    assert (opt.cqi_table >= exact.cqi_table).all() and opt.cqi_table.mean() > exact.cqi_table.mean() + 1.5
    err = noisy.sinr_error_db.to_numpy()
    assert len(err) == 200 and abs(err.mean()) < 0.75 and 2.4 < err.std() < 3.6
