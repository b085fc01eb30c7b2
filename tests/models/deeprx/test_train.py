"""DeepRx offline training: sample split, the CLI writing a checkpoint that records the trained
sample indices and held-out BERs next to the chain's receivers, determinism, input errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models.deeprx.data import FORMAT_VERSION, load_dataset
from models.deeprx.model import DeepRx
from models.deeprx.train import DeepRxTrainConfig, split_rows, train_deeprx
from simulator.cli import main
from simulator.datagen.deeprx import DeepRxDataConfig, generate_dataset
from tests.models.deeprx.conftest import TINY_DATA


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("deeprx") / "ds"
    generate_dataset(DeepRxDataConfig(**{**TINY_DATA, "num_samples": 12, "shard_size": 12}), out)
    return out


def test_split_rows():
    train, hold = split_rows(100, DeepRxTrainConfig())
    assert train.tolist() == list(range(90)) and hold.tolist() == list(range(90, 100))
    train, hold = split_rows(100, DeepRxTrainConfig(num_samples=20, holdout_fraction=0.25))
    assert train.tolist() == list(range(20)) and hold.tolist() == list(range(75, 100))
    with pytest.raises(ValueError, match="asked for 95 training samples; the dataset has 90 \\(\\+10 held out\\)"):
        split_rows(100, DeepRxTrainConfig(num_samples=95))
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        DeepRxTrainConfig(steps=0)


def test_cli_trains_and_records_the_samples(dataset, tmp_path, capsys):
    ckpt = tmp_path / "rx.json"
    assert main(["train", "deeprx", "--data", str(dataset), "--out", str(ckpt), "--steps", "4", "--batch-size", "3",
                 "--samples", "8"]) == 0
    out = capsys.readouterr().out
    assert "held-out BER" in out and "LS+LMMSE" in out
    doc = json.loads(ckpt.read_text())
    training = doc["config"]["training"]
    assert training["train_index"] == [0, 8] and training["holdout_index"] == [10, 12]
    assert training["config"]["steps"] == 4 and training["data_config"]["num_samples"] == 12
    assert training["data_format_version"] == FORMAT_VERSION          # the pool's format
    for k in ("holdout_ber", "holdout_ber_lmmse", "holdout_ber_genie_lmmse"):
        assert 0 <= training[k] <= 0.5 + 1e-9, k
    model = DeepRx.load(ckpt)
    assert model.config.blocks == DeepRx.Config.preset("small").blocks
    assert main(["train", "deeprx", "--data", str(tmp_path), "--out", str(ckpt)]) == 2
    assert "--data: no deeprx dataset at" in capsys.readouterr().err
    assert main(["train", "deeprx", "--data", str(dataset), "--out", str(ckpt), "--samples", "11"]) == 2


def test_training_is_deterministic_and_moves_the_weights(dataset):
    arrays = load_dataset(dataset)
    cfg = DeepRxTrainConfig(steps=3, batch_size=4, learning_rate=1e-2, seed=1)
    a, ma = train_deeprx(arrays, cfg)
    b, mb = train_deeprx(arrays, cfg)
    fresh = DeepRx(DeepRx.Config.preset("small"), seed=1)
    for wa, wb, w0 in zip(a.params, b.params, fresh.params):
        assert np.allclose(wa.numpy(), wb.numpy(), rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(wa.numpy(), w0.numpy()) for wa, w0 in zip(a.params, fresh.params))
    assert ma["holdout_bce"] == pytest.approx(mb["holdout_bce"], rel=1e-5)
    assert "holdout_ber_lmmse" not in ma            # no reference_llrs, no reference receivers


def test_cosine_schedule_and_continuing_from_a_checkpoint(dataset, tmp_path):
    cfg = DeepRxTrainConfig(steps=10, learning_rate=1e-2, lr_schedule="cosine", lr_final_fraction=0.1)
    sched = cfg.learning_rate_schedule()
    assert float(sched(0)) == pytest.approx(1e-2) and float(sched(10)) == pytest.approx(1e-3)
    assert DeepRxTrainConfig().learning_rate_schedule() == 1e-3
    with pytest.raises(ValueError, match="lr_schedule must be 'constant' or 'cosine', got 'step'"):
        DeepRxTrainConfig(lr_schedule="step")
    first = tmp_path / "first.json"
    assert main(["train", "deeprx", "--data", str(dataset), "--out", str(first), "--steps", "2", "--batch-size", "3",
                 "--samples", "4"]) == 0
    second = tmp_path / "second.json"
    assert main(["train", "deeprx", "--data", str(dataset), "--out", str(second), "--steps", "2", "--batch-size", "3",
                 "--lr-schedule", "cosine", "--lr", "1e-9", "--init", str(first)]) == 0
    training = json.loads(second.read_text())["config"]["training"]
    assert training["config"]["lr_schedule"] == "cosine" and training["train_index"] == [0, 10]
    assert training["init"]["checkpoint"] == str(first) and training["init"]["training"]["train_index"] == [0, 4]
    # continuing starts from the first checkpoint's weights (a learning rate of 1e-9 keeps them), not a fresh model
    a, b, fresh = DeepRx.load(first), DeepRx.load(second), DeepRx(DeepRx.Config.preset("small"), seed=0)
    assert all(np.allclose(wa.numpy(), wb.numpy(), atol=1e-6) for wa, wb in zip(a.params, b.params))
    assert any(not np.allclose(wa.numpy(), w0.numpy(), atol=1e-6) for wa, w0 in zip(a.params, fresh.params))
    assert main(["train", "deeprx", "--data", str(dataset), "--out", str(second), "--init",
                 str(tmp_path / "missing.json")]) == 2
