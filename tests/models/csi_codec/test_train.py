"""The RD training command (python -m models.csi_codec.train) on a tiny generated dataset: the
checkpoint records the test split's metrics and which shards it came from."""
from __future__ import annotations

import numpy as np

from models.checkpoint import read_checkpoint_config
from models.csi_codec.data import read_description
from models.csi_codec.model import ConvCsiCodec
from models.csi_codec.train import main
from simulator.datagen.csi import CsiDataConfig, generate_dataset


def test_training_command_writes_a_checkpoint_with_test_metrics(tmp_path):
    cfg = CsiDataConfig(source="cdl", bs_array_rows=2, bs_array_cols=4, num_subcarriers=8, num_samples=20,
                        shard_size=10, split_fractions=(0.5, 0.0, 0.5))
    generate_dataset(cfg, tmp_path / "d")
    out = tmp_path / "c.json"
    assert main(["--data", str(tmp_path / "d"), "--out", str(out), "--filters", "4", "--steps", "2",
                 "--batch", "4"]) == 0
    training = read_checkpoint_config(out, "conv_csi").training
    test = training["test"]
    assert test["n"] == 10 and np.isfinite(test["nmse_db"])
    assert test["rate_coded_one_stream"] >= test["rate_estimated"] - 64 / (10 * 64)
    assert training["test_shards"] == [{"index": 1, "first": 0, "num_samples": 10,
                                               "x_sha256": read_description(tmp_path / "d")["shards"][1]["x_sha256"]}]
    assert ConvCsiCodec.load(out).config.num_ant == 8
