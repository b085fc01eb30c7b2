"""CSI datasets drawn from a scenario's own channel (source scenario): the samples are the codec grid of
the drop's FadingChannel at its CSI-RS slots (known answer), the same seed gives the same bytes, the shard
size does not change the samples, bad inputs name their field, the training command reads the dataset,
and the bundled mimo_link preset validates."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml

from models.checkpoint import read_checkpoint_config
from models.csi_codec.data import SPLITS, load_split, read_description
from models.csi_codec.train import main as train_main
from simulator.channel.fading import FadingChannel
from simulator.csi.codec_grid import CodecGrid
from simulator.datagen.csi import CsiDataConfig, generate_dataset, load_data_config
from simulator.loader import ConfigError, load_scenario
from tests.conftest import REPO, TINY

# a 2x4 array, 8 PRBs at 30 kHz (96 subcarriers, 4 subbands of 2 PRBs), two UE antennas at 30 km/h,
# CSI-RS every 5 ms = 10 slots
SCENARIO = {**copy.deepcopy(TINY),
            "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": 8, "carrier_frequency_ghz": 3.5},
            "csi_rs": {"period_ms": 5, "report_delay_ms": 2, "report": {"kind": "ideal", "subband_prbs": 2}},
            "gnb": {"antenna_rows": 2, "antenna_cols": 4}, "phy": {"num_ue_antennas": 2},
            "channel": {"model": "cdl", "profile": "C", "delay_spread_ns": 100}}
OCCASIONS, PERIOD_SLOTS, UE_ANT = 3, 10, 2
PER_DROP = OCCASIONS * UE_ANT
SPEED_MPS = 30 / 3.6


def _write(path, data: dict):
    path.write_text(yaml.safe_dump(data))
    return path


def _config(scenario_path, **kw) -> CsiDataConfig:
    return CsiDataConfig(**{"source": "scenario", "scenario": str(scenario_path), "num_subcarriers": 16,
                            "occasions_per_drop": OCCASIONS, "num_samples": 14, "shard_size": 5, "seed": 2, **kw})


def _all_samples(out) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """x of every sample in order (the splits concatenated), and the shards' arrays concatenated."""
    desc = read_description(out)
    shards = [np.load(out / s["file"]) for s in desc["shards"]]
    arrays = {k: np.concatenate([s[k] for s in shards]) for k in ("x", "scale", "distance_m")}
    return np.concatenate([load_split(out, s) for s in SPLITS]), arrays


@pytest.fixture(scope="module")
def scenario_path(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("sc") / "tiny.yaml", SCENARIO)


@pytest.fixture(scope="module")
def dataset(scenario_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    cfg = _config(scenario_path)
    generate_dataset(cfg, out)
    return out, cfg


def test_samples_are_the_codec_grid_of_each_drops_channel(dataset, scenario_path):
    out, cfg = dataset
    x, arrays = _all_samples(out)
    assert x.shape == (14, 8, 16, 2) and np.array_equal(x, arrays["x"])
    sc = load_scenario(scenario_path)
    grid = CodecGrid(8, 16, 8, 8, 2)
    for drop in (0, 2):                               # the last drop (samples 12, 13) is cut short
        seed = int(np.random.SeedSequence(cfg.seed).spawn(drop + 1)[drop].generate_state(1)[0])
        slots = np.arange((OCCASIONS - 1) * PERIOD_SLOTS + 1)
        channel = FadingChannel(sc.channel, sc.carrier, UE_ANT, SPEED_MPS, slots, seed, gnb=sc.gnb)
        for j in range(OCCASIONS):
            h = channel.cfr_slot(j * PERIOD_SLOTS)                         # [ue_ant, gnb_ant, 96]
            want = grid.to_codec(h)                                         # [ue_ant, 8, 16, 2]
            for a in range(UE_ANT):
                i = drop * PER_DROP + j * UE_ANT + a
                if i >= 14:
                    continue
                assert np.array_equal(x[i], want[a]), (drop, j, a)
                h_sc = h[a][:, grid.sample_sc]                               # x * scale is the measured channel
                np.testing.assert_allclose((x[i, ..., 0] + 1j * x[i, ..., 1]) * arrays["scale"][i], h_sc,
                                           rtol=1e-5, atol=1e-6 * np.abs(h_sc).max())
                assert arrays["distance_m"][i] == pytest.approx(j * PERIOD_SLOTS * 0.5e-3 * SPEED_MPS)
    assert not np.array_equal(x[0], x[PER_DROP])                             # drops are independent


def test_description_is_the_scenarios_array_and_carrier(dataset):
    out, cfg = dataset
    desc = read_description(out)
    assert desc["shape"] == [8, 16, 2] and [s["num_samples"] for s in desc["shards"]] == [5, 5, 4]
    assert desc["array"]["rows"] == 2 and desc["array"]["cols"] == 4 and desc["array"]["polarization"] == "single"
    assert desc["carrier_frequency_hz"] == 3.5e9
    # subcarrier floor((k + 1/2) 96 / 16) = 6k + 3 of Sionna's centred carrier: (6k + 3 - 48) x 30 kHz
    np.testing.assert_allclose(desc["frequencies_hz"], (6 * np.arange(16) + 3 - 48) * 30e3)
    assert desc["scenario"]["gnb"]["antenna_cols"] == 4 and desc["scenario"]["phy"]["num_ue_antennas"] == 2
    assert "bs_array_rows" not in desc["config"] and desc["config"]["occasions_per_drop"] == OCCASIONS
    assert CsiDataConfig.model_validate(desc["config"]) == cfg             # redrawable from its description


def test_same_seed_same_bytes_and_shard_size_does_not_change_the_samples(dataset, scenario_path, tmp_path):
    out, cfg = dataset
    generate_dataset(cfg, tmp_path / "again")
    shas = [s["x_sha256"] for s in read_description(out)["shards"]]
    assert [s["x_sha256"] for s in read_description(tmp_path / "again")["shards"]] == shas
    generate_dataset(_config(scenario_path, shard_size=4), tmp_path / "fours")       # shards cut drops elsewhere
    assert np.array_equal(_all_samples(tmp_path / "fours")[0], _all_samples(out)[0])
    generate_dataset(_config(scenario_path, seed=3, num_samples=6), tmp_path / "other")
    assert not np.array_equal(_all_samples(tmp_path / "other")[0], _all_samples(out)[0][:6])


def _error(tmp_path, text: str) -> str:
    p = tmp_path / "data.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_data_config(p)
    return str(err.value)


def test_bad_inputs_name_the_field(scenario_path, tmp_path):
    head = f"source: scenario\nscenario: {scenario_path}\n"
    # 2 samples over 96 subcarriers (subcarriers 24 and 72) leave subbands 0 and 2 of 2 PRBs empty
    msg = _error(tmp_path, head + "num_subcarriers: 2\n")
    assert "num_subcarriers: its 2 subcarriers over 96 leave precoding subband(s) [0, 2]" in msg and "(line 3)" in msg
    assert "bs_array_rows: is the scenario's" in _error(tmp_path, head + "bs_array_rows: 4\nnum_subcarriers: 16\n")
    assert "carrier_frequency_ghz: is the scenario's" in _error(tmp_path, head + "carrier_frequency_ghz: 3.5\n")
    msg = _error(tmp_path, f"source: scenario\nscenario: {tmp_path / 'nope.yaml'}\n")
    assert "scenario:" in msg and "no such file" in msg and "(line 2)" in msg
    bad = _write(tmp_path / "bad.yaml", {**SCENARIO, "gnb": {"antenna_rows": 0}})
    msg = _error(tmp_path, f"source: scenario\nscenario: {bad}\n")
    assert "scenario:" in msg and "invalid scenario: gnb.antenna_rows:" in msg
    assert "scenario: required with source: scenario" in _error(tmp_path, "source: scenario\n")
    assert "occasions_per_drop: goes with (and only with) source: scenario" in _error(
        tmp_path, "source: cdl\noccasions_per_drop: 3\n")
    static = _write(tmp_path / "static.yaml", {**SCENARIO, "ues": [{"id": 0, "mobility": {"model": "static"}}]})
    msg = _error(tmp_path, f"source: scenario\nscenario: {static}\n")
    assert "occasions_per_drop: the scenario's UE 0 (ues.0) is static" in msg


def test_training_command_reads_the_dataset(dataset, tmp_path):
    out, _ = dataset
    ckpt = tmp_path / "c.json"
    assert train_main(["--data", str(out), "--out", str(ckpt), "--filters", "4", "--steps", "2", "--batch", "4"]) == 0
    ck = read_checkpoint_config(ckpt, "conv_csi")
    assert (ck.config["num_ant"], ck.config["num_sc"]) == (8, 16)
    assert ck.training["dataset_config"]["source"] == "scenario" and np.isfinite(ck.training["test"]["nmse_db"])


def test_mimo_link_preset_validates(monkeypatch):
    monkeypatch.chdir(REPO)                              # the preset names its scenario from the repository root
    cfg = load_data_config("scenarios/training/csi_mimo_link_32x32.yaml")
    assert (cfg.num_ant, cfg.num_subcarriers, cfg.num_samples, cfg.shard_size) == (32, 32, 5000, 500)


def test_a_umi_scenario_draws_from_the_ues_start_and_velocity(tmp_path):
    umi = {**copy.deepcopy(SCENARIO), "channel": {"model": "umi"},
           "ues": [{"id": 0, "mobility": {"model": "linear", "speed_kmh": 30, "start_m": [60, 0, 1.5]}}]}
    out = tmp_path / "umi"
    generate_dataset(_config(_write(tmp_path / "umi.yaml", umi), num_samples=6), out)
    x, arrays = _all_samples(out)
    assert x.shape == (6, 8, 16, 2) and np.isfinite(x).all() and (arrays["scale"] > 0).all()
    assert read_description(out)["array"]["pattern"] == "38.901"


def test_a_ray_traced_scenario_draws_along_the_ues_drive(tmp_path):
    from tests.simulator.channel.test_ray_traced_channel import CANYON, CANYON_GNB

    rt = {**copy.deepcopy(SCENARIO), "channel": {"model": "ray_traced", "ray_traced": CANYON},
          "gnb": {"antenna_rows": 2, "antenna_cols": 4, "position_m": list(CANYON_GNB)},
          "ues": [{"id": 0, "mobility": {"model": "linear", "speed_kmh": 30, "start_m": [2, 2, 1.5]}}]}
    out = tmp_path / "rt"
    generate_dataset(_config(_write(tmp_path / "rt.yaml", rt), num_samples=6), out)
    x, arrays = _all_samples(out)
    assert x.shape == (6, 8, 16, 2) and np.isfinite(x).all() and (arrays["scale"] > 0).all()


def test_drop_ues_all_follows_each_ue_of_a_cell_in_turn(tmp_path):
    """drop_ues all: drop k is UE k mod 3's drive (UMi: its start and velocity; its speed sets the travel),
    so the samples of drop k equal the codec grid of that UE's FadingChannel; a static UE with several
    occasions per drop is refused, naming it."""
    from simulator.mobility import Mobility

    ues = [{"id": 0, "mobility": {"model": "linear", "speed_kmh": 30, "start_m": [60, 0, 1.5]}},
           {"id": 1, "mobility": {"model": "linear", "speed_kmh": 3, "start_m": [-40, 50, 1.5], "heading_deg": 90}},
           {"id": 2, "mobility": {"model": "linear", "speed_kmh": 60, "start_m": [10, -80, 1.5], "heading_deg": 200}}]
    cell = {**copy.deepcopy(SCENARIO), "channel": {"model": "umi"}, "phy": {"num_ue_antennas": 1}, "ues": ues}
    path = _write(tmp_path / "cell.yaml", cell)
    cfg = _config(path, num_samples=4 * OCCASIONS, drop_ues="all")
    generate_dataset(cfg, tmp_path / "all")
    x, arrays = _all_samples(tmp_path / "all")
    sc = load_scenario(path)
    grid = CodecGrid(8, 16, 8, 8, 2)
    for drop in range(4):
        mob = Mobility(sc.ues[drop % 3].mobility)
        seed = int(np.random.SeedSequence(cfg.seed).spawn(drop + 1)[drop].generate_state(1)[0])
        channel = FadingChannel(sc.channel, sc.carrier, 1, mob.speed_mps, np.arange((OCCASIONS - 1) * PERIOD_SLOTS + 1),
                                seed, gnb=sc.gnb, start_position_m=mob.position_m([0.0])[0],
                                velocity_mps=mob.velocity_mps([0.0])[0], mobility=mob)
        for j in range(OCCASIONS):
            # (Sionna's system-level draw is reproducible to float rounding only, not bit for bit)
            np.testing.assert_allclose(x[drop * OCCASIONS + j], grid.to_codec(channel.cfr_slot(j * PERIOD_SLOTS))[0],
                                       rtol=1e-4, atol=1e-5)
            assert arrays["distance_m"][drop * OCCASIONS + j] == pytest.approx(j * PERIOD_SLOTS * 0.5e-3 * mob.speed_mps)
    static = {**cell, "ues": [*ues, {"id": 3, "mobility": {"model": "static", "position_m": [30, 30, 1.5]}}]}
    with pytest.raises(ValueError, match=r"occasions_per_drop: the scenario's UE 3 \(ues.3\) is static"):
        _config(_write(tmp_path / "static.yaml", static), drop_ues="all")
    _config(_write(tmp_path / "static.yaml", static))                       # first UE only: it moves


def test_airtune_train_conv_csi_records_the_held_out_sgcs(dataset, tmp_path):
    """``airtune train conv_csi`` on a scenario's dataset: the checkpoint's record holds the command, the data
    folder, the held-out NMSE and the held-out SGCS of the gNB's precoders from the reconstructions, which
    ``CodecGrid.sgcs`` computes (1 for a perfect reconstruction, low for an unrelated one)."""
    from simulator.cli import main as cli_main

    out, _ = dataset
    ckpt = tmp_path / "cell.json"
    assert cli_main(["train", "conv_csi", "--data", str(out), "--out", str(ckpt), "--filters", "4", "--steps", "3",
                     "--batch-size", "4"]) == 0
    training = read_checkpoint_config(ckpt, "conv_csi").training
    assert training["command"].startswith("airtune train conv_csi --data") and training["data"] == str(out)
    assert np.isfinite(training["test"]["nmse_db"]) and 0 < training["test"]["sgcs"] <= 1
    assert 0 <= training["test"]["sgcs_p5"] <= training["test"]["sgcs"]
    grid = CodecGrid(8, 16, 8, 8, 2)
    x = load_split(out, "test")
    np.testing.assert_allclose(grid.sgcs(x, x), 1.0, atol=1e-9)
    unrelated = grid.sgcs(x, np.random.default_rng(0).normal(size=x.shape).astype(np.float32))
    assert unrelated.shape == (len(x), 4) and unrelated.mean() < 0.5
