"""The grid a DeepRx checkpoint fits, read without importing TensorFlow (the scenario schema calls it).

``checkpoint_grid`` gives the model's receive antennas and LLRs per RE, and, for a checkpoint
from ``airtune train deeprx``, the data config's PRBs, DMRS symbols and subcarrier spacing.
The receiver itself is ``models.deeprx.model.DeepRx`` (registered as ``deeprx``), which has the
``models.base.NeuralReceiver`` protocol.
"""
from __future__ import annotations

from pathlib import Path

from models.checkpoint import read_checkpoint_config


def checkpoint_grid(path: str | Path) -> dict:
    """{"num_rx_ant", "max_bits_per_symbol"[, "num_prbs", "num_dmrs_symbols", "subcarrier_spacing_khz"]}
    of a deeprx checkpoint JSON (the last three only when it records its training data config).
    Raises ValueError (CheckpointError) for a file that is not a deeprx checkpoint."""
    ckpt = read_checkpoint_config(path, "deeprx")
    out = {"num_rx_ant": int(ckpt.config.get("num_rx_ant", 1)),
           "max_bits_per_symbol": int(ckpt.config.get("max_bits_per_symbol", 8))}
    data = (ckpt.training or {}).get("data_config") or {}
    for k in ("num_prbs", "num_dmrs_symbols", "subcarrier_spacing_khz"):
        if k in data:
            out[k] = int(data[k])
    return out
