"""Neural CSI feedback in the event loop: reports on the feedback link, decoded at the gNB on
arrival, fine-tuning every interval_m metres, updates that arrive late and cost bits."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from simulator.engine import Simulation
from simulator.loader import ConfigError
from tests.models.csi_codec.conftest import save_tiny_codec

CAPACITY_KBPS = 200.0


@pytest.fixture(scope="module")
def csi_files(tmp_path_factory):
    """A tiny codec and two 8x8 CSI datasets: a CDL-A drive (40 m, 5 cm) and i.i.d. CDL-C drops."""
    from simulator.datagen.csi import CsiDataConfig, generate_dataset

    root = tmp_path_factory.mktemp("csi")
    ckpt = save_tiny_codec(root / "tiny.json")
    common = dict(bs_array_rows=2, bs_array_cols=4, num_subcarriers=8, seed=3, shard_size=400)
    track = root / "track"
    generate_dataset(CsiDataConfig(source="cdl_track", cdl_profile="A", delay_spread_ns=300, ue_speed_kmh=30,
                                   track_spacing_m=0.05, num_samples=801, **common), track)
    drops = root / "drops"
    generate_dataset(CsiDataConfig(source="cdl", num_samples=20, **common), drops)
    return {"checkpoint": ckpt, "track": str(track), "drops": str(drops)}


def _scenario(make_scenario, files, scheme: str, **extra):
    return make_scenario({
        "duration_s": 4.0, "csi_rs.period_ms": 20, "feedback.capacity_kbps": CAPACITY_KBPS,
        "models.csi_codec": {"checkpoint": files["checkpoint"], "track": files["track"],
                             "online": {"scheme": scheme, "interval_m": 8, "samples": 64, "steps": 20, "batch": 16,
                                        "learning_rate": 1e-3, "ue_gflops": 0.5}},
        **extra})


def _run(sc, out) -> tuple[pd.DataFrame, pd.DataFrame]:
    Simulation(sc, out).run()
    return pd.read_parquet(out / "periods.parquet"), pd.read_parquet(out / "updates.parquet")


def test_full_model_reports_and_updates_travel_on_the_feedback_link(tmp_path, make_scenario, csi_files):
    sc = _scenario(make_scenario, csi_files, "full_model")
    periods, updates = _run(sc, tmp_path / "a")
    # one report per CSI-RS occasion, every one decoded by the gNB before its period ended
    assert len(periods) == 200 and periods["csi_nmse_db"].notna().all()
    assert (periods["csi_bits"] > 0).all()
    # the coded size follows the entropy model's estimate (per-report streams: <= 64 bits of overhead)
    gap = periods["csi_bits"] - periods["csi_bits_estimated"]
    assert (gap.abs() <= 0.01 * periods["csi_bits_estimated"] + 64).all()
    # the report's message carries the CQI bits and the CSI bits
    assert (periods["report_arrival_t_us"] - periods["t_us"] - 2000 >=
            np.ceil((periods["csi_bits"] + 4) * 1e6 / (CAPACITY_KBPS * 1e3))).all()
    # 33 m travelled at 30 km/h, a fine-tuning every 8 m: 4 of them, each sent as coded bits; the
    # last one is still computing when the run ends (logged with applied_t_us -1)
    assert len(updates) == 4 and (updates["variant"] == "full_model").all()
    assert (updates["applied_t_us"] == -1).tolist() == [False, False, False, True]
    updates = updates[updates["applied_t_us"] >= 0]
    assert (updates["update_bits"] > 0).all() and (updates["update_nonzero"] > 0).all()
    assert (updates["update_nonzero"] <= updates["update_weights"]).all()
    # an update arrives after its compute time and its own serialisation on the link
    min_arrival = updates["t_us"] + updates["compute_us"] + np.ceil(updates["update_bits"] * 1e6 / (CAPACITY_KBPS * 1e3))
    assert (updates["applied_t_us"] >= min_arrival).all()
    assert np.allclose(updates["trigger_value"], 8.0, atol=30 / 3.6 * 0.02 + 1e-6)   # one occasion late at most
    assert (updates["loss_after"] < updates["loss_before"]).all()


def test_same_seed_same_csi_logs(tmp_path, make_scenario, csi_files):
    sc = _scenario(make_scenario, csi_files, "full_model")
    p1, u1 = _run(sc, tmp_path / "a")
    p2, u2 = _run(sc, tmp_path / "b")
    pd.testing.assert_frame_equal(p1, p2)
    pd.testing.assert_frame_equal(u1, u2)


def test_encoder_only_sends_nothing_and_none_never_fine_tunes(tmp_path, make_scenario, csi_files):
    p_none, u_none = _run(_scenario(make_scenario, csi_files, "none"), tmp_path / "none")
    assert len(u_none) == 0 and p_none["csi_nmse_db"].notna().all()
    p_eo, u_eo = _run(_scenario(make_scenario, csi_files, "encoder_only"), tmp_path / "eo")
    assert len(u_eo) == 4 and (u_eo["update_bits"] == 0).all()
    done = u_eo[u_eo["applied_t_us"] >= 0]
    assert len(done) == 3 and (done["applied_t_us"] == done["t_us"] + done["compute_us"]).all()
    # up to the first fine-tuning the two runs report the same CSI with the same codec
    first = int(u_eo["applied_t_us"].min())
    before = p_none["t_us"] <= first
    pd.testing.assert_series_equal(p_none.loc[before, "csi_bits"], p_eo.loc[before, "csi_bits"])
    assert not p_none["csi_bits"].equals(p_eo["csi_bits"])


@pytest.mark.parametrize("field, value, message", [
    ("track", "drops", "is not a track"),
    ("checkpoint", "missing.json", "no such checkpoint file"),
])
def test_bad_csi_codec_fields_are_named(make_scenario, csi_files, field, value, message):
    cfg = {"checkpoint": csi_files["checkpoint"], "track": csi_files["track"]}
    cfg[field] = csi_files.get(value, value)
    with pytest.raises(ConfigError) as err:
        make_scenario({"models.csi_codec": cfg})
    assert f"models.csi_codec.{field}" in str(err.value) and message in str(err.value)


def test_a_ue_that_drives_off_the_track_is_an_input_error(make_scenario, csi_files):
    with pytest.raises(ConfigError) as err:
        make_scenario({"duration_s": 6.0, "models.csi_codec": {"checkpoint": csi_files["checkpoint"],
                                                               "track": csi_files["track"]}})
    text = str(err.value)
    assert "models.csi_codec.track" in text and "40 m long" in text and "travels 50 m" in text


def test_two_runs_give_byte_identical_logs(tmp_path, make_scenario, csi_files):
    """Compute times are modelled, never measured: the same scenario and seed give the same bytes."""
    sc = _scenario(make_scenario, csi_files, "full_model", duration_s=2.0)
    for name in ("a", "b"):
        _run(sc, tmp_path / name)
    for table in ("updates", "slots", "periods"):
        assert (tmp_path / "a" / f"{table}.parquet").read_bytes() == (tmp_path / "b" / f"{table}.parquet").read_bytes()
    assert len(pd.read_parquet(tmp_path / "a" / "updates.parquet")) >= 1
