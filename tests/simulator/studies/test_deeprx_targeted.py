"""The targeted fine-tuning study: transmitted grids rebuilt from the stored bits (y - h x is noise of
power no), fresh noise keeps channel and bits, and the CLI runs end to end on a tiny dataset
and checkpoint, writing its CSVs, RESULTS.md (every variant) and the figure."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.deeprx.data import load_dataset, subset
from simulator.cli import main as airtune
from simulator.datagen.deeprx import DeepRxDataConfig, generate_dataset
from simulator.studies.deeprx_targeted import main, transmitted_grid, with_fresh_noise
from tests.models.deeprx.conftest import TINY_DATA

DATA = {**TINY_DATA, "snr_db": (0.0, 8.0), "num_samples": 24, "shard_size": 24}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("deeprx_exp") / "ds"
    generate_dataset(DeepRxDataConfig(**DATA), out)
    return out


def _noise_power_ratio(arrays: dict, x: np.ndarray) -> np.ndarray:
    r = arrays["y"] - arrays["h"][:, :, None, :] * x[:, None]
    return np.mean(np.abs(r) ** 2, axis=(1, 2, 3)) / arrays["no"]


def test_transmitted_grid_explains_the_received_grid(dataset):
    arrays = load_dataset(dataset)
    cfg = DeepRxDataConfig(**DATA)
    x = transmitted_grid(cfg, arrays)
    ratio = _noise_power_ratio(arrays, x)                      # 13 x 24 noisy REs per sample: +-8 % (1 sigma)
    assert np.all(np.abs(ratio - 1) < 0.35) and abs(ratio.mean() - 1) < 0.1
    assert np.allclose(x[:, arrays["pilots"] != 0], arrays["pilots"][arrays["pilots"] != 0])
    wrong = x.copy()
    wrong[:, arrays["data_re"]] = np.roll(wrong[:, arrays["data_re"]], 1, axis=1)
    assert _noise_power_ratio(arrays, wrong).mean() > 1.5        # the check can tell a wrong grid


def test_fresh_noise_keeps_channel_and_bits(dataset):
    arrays = load_dataset(dataset)
    cfg = DeepRxDataConfig(**DATA)
    one = subset(arrays, [3, 5])
    fresh = with_fresh_noise(cfg, one, 4, seed=0)
    assert fresh["y"].shape == (8, *one["y"].shape[1:])
    assert np.array_equal(fresh["bits"][:4], np.repeat(one["bits"][:1], 4, 0))
    assert np.array_equal(fresh["h"][4:], np.repeat(one["h"][1:], 4, 0))
    assert not np.allclose(fresh["y"][0], fresh["y"][1]) and not np.allclose(fresh["y"][0], one["y"][0])
    ratio = _noise_power_ratio(fresh, transmitted_grid(cfg, fresh))
    assert abs(ratio.mean() - 1) < 0.1
    again = with_fresh_noise(cfg, one, 4, seed=0)
    assert np.array_equal(again["y"], fresh["y"])


@pytest.mark.slow              # ~2 min on 2 shared cores (chain builds, TF traces)
def test_cli_runs_the_study_end_to_end(dataset, tmp_path):
    ckpt = tmp_path / "rx.json"
    assert airtune(["train", "deeprx", "--data", str(dataset), "--out", str(ckpt), "--steps", "3",
                    "--batch-size", "4"]) == 0
    out = tmp_path / "study"
    args = ["--checkpoint", str(ckpt), "--out", str(out), "--seeds", "0", "--targets", "2", "--hessian-subset", "4",
            "--top-k", "2", "--num-samples", "3", "--noise-draws", "2", "--random-draws", "2", "--curve-steps", "2",
            "--general-slots", "1"]
    assert main(args) == 0
    results = pd.read_csv(out / "results.csv")
    targets = pd.read_csv(out / "targets.csv")
    assert len(targets) == 2 and (targets["ber_genie_eval"] >= 1e-3).all()
    assert results["ber_general_before"].notna().all() and results["ber_general_after"].notna().all()
    # per target: 8 variants (random twice) with sgd, 3 with adam (random twice), multi: 2 x (1 + 2)
    assert len(results) == 2 * (9 + 4 + 6)
    assert set(results["variant"]) >= {"random", "influence/l_relative/ber", "gradient_ascent/l_relative/bce",
                                       "multi:influence/l_relative/bce"}
    ok = results["gap_slot_before"] > 0
    np.testing.assert_allclose(results.loc[ok, "reduction_slot"],
                               100 * (1 - results.loc[ok, "gap_slot_after"] / results.loc[ok, "gap_slot_before"]),
                               rtol=1e-4, atol=5e-3)           # the CSV keeps 6 digits
    curve = pd.read_csv(out / "curve.csv")
    assert sorted(curve["step"].unique()) == [0, 1, 2] and (curve.loc[curve["step"] == 0, "reduction_slot"] == 0).all()
    md = (out / "RESULTS.md").read_text()
    assert md.startswith("# DeepRx targeted fine-tuning") and "| multi:random | 2 |" in md
    assert "gap_vs_steps.png" in md and (out / "gap_vs_steps.png").stat().st_size > 1000
    settings = json.loads((out / "settings.json").read_text())
    assert settings["pool_size"] == 21 and settings["num_holdout"] == 3
    (out / "RESULTS.md").unlink()
    assert main(args + ["--tables-only"]) == 0 and (out / "RESULTS.md").read_text() == md
    assert main(["--checkpoint", str(ckpt), "--out", str(out), "--eval-slots", "5"]) == 2     # 3 held out
