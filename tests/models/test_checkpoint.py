"""Checkpoints: npz + JSON + sha256; the committed LightTune checkpoint loads and predicts."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from models.checkpoint import (CheckpointError, load_checkpoint, read_checkpoint_config, save_checkpoint,
                               save_typed_checkpoint)
from models.ff_bler.config import LightTuneConfig
from models.ff_bler.model import FFBlerPredictor
from tests.conftest import REPO

COMMITTED = REPO / "models" / "checkpoints" / "ff_bler_tdl_a30.json"


def test_round_trip_and_tamper_detection(tmp_path):
    w = {"W0": np.arange(6, dtype=np.float32).reshape(2, 3), "b0": np.ones(2, np.float32)}
    path = save_checkpoint(tmp_path / "m.json", {"a": 1}, w)
    cfg, back = load_checkpoint(path)
    assert cfg == {"a": 1} and all(np.array_equal(w[k], back[k]) for k in w)
    npz = tmp_path / "m.npz"
    data = bytearray(npz.read_bytes())
    data[-10] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)


def test_committed_checkpoint_loads_and_predicts(tmp_path):
    shutil.copy(COMMITTED, tmp_path / COMMITTED.name)
    shutil.copy(COMMITTED.with_suffix(".npz"), tmp_path / COMMITTED.with_suffix(".npz").name)
    pred = FFBlerPredictor.load(str(tmp_path / COMMITTED.name), LightTuneConfig(), np.random.default_rng(0))
    assert pred.config.label_encoding == "onehot" and pred.net.sizes == (23, 32, 32)
    assert pred.config.goodness == "layer"
    f = np.tile(np.asarray(pred.config.feature_mean, np.float32), (5, 1))
    out = pred.predict(f, np.array([1, 4, 8, 12, 15]))
    assert out.shape == (5,) and np.all((out >= 0) & (out <= 1))
    _, weights = load_checkpoint(COMMITTED)
    assert set(weights) == {"W0", "b0", "W1", "b1"}


def test_read_checkpoint_config_without_weights(tmp_path):
    path = save_typed_checkpoint(tmp_path / "m.json", "deeprx", {"num_rx_ant": 2}, {"w": np.zeros(3, np.float32)},
                                 training={"data": "d"})
    (tmp_path / "m.npz").unlink()                       # the record is read without the weights
    ckpt = read_checkpoint_config(path, "deeprx")
    assert (ckpt.config, ckpt.training) == ({"num_rx_ant": 2}, {"data": "d"}) and len(ckpt.weights_sha256) == 64
    with pytest.raises(CheckpointError, match="not a conv_csi checkpoint \\(model_type 'deeprx'\\)"):
        read_checkpoint_config(path, "conv_csi")
    with pytest.raises(CheckpointError, match="not a deeprx checkpoint \\(model_type None\\)"):
        read_checkpoint_config(COMMITTED, "deeprx")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_checkpoint_config(tmp_path / "missing.json", "deeprx")
    (tmp_path / "bad.json").write_text("{\"config\": {}}")
    with pytest.raises(CheckpointError, match="not an airtune checkpoint \\(no sha256, weights_file\\)"):
        read_checkpoint_config(tmp_path / "bad.json", "deeprx")
