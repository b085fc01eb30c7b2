"""The grid a DeepRx checkpoint fits, read without importing TensorFlow (the scenario schema calls it).

``checkpoint_grid`` gives the model's receive antennas and LLRs per RE, and, for a checkpoint
from ``airtune train deeprx``, the data config's PRBs, DMRS symbols and subcarrier spacing.
The receiver itself is ``models.deeprx.model.DeepRx`` (registered as ``deeprx``), which has the
``models.base.NeuralReceiver`` protocol.
"""
from __future__ import annotations

import json
from pathlib import Path


def checkpoint_grid(path: str | Path) -> dict:
    """{"num_rx_ant", "max_bits_per_symbol"[, "num_prbs", "num_dmrs_symbols", "subcarrier_spacing_khz"]}
    of a deeprx checkpoint JSON (the last three only when it records its training data config).
    Raises ValueError for a file that is not a deeprx checkpoint."""
    try:
        doc = json.loads(Path(path).read_text())
        cfg = doc["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(cfg, dict) or cfg.get("model_type") != "deeprx":
        raise ValueError(f"{path} is not a deeprx checkpoint (model_type "
                         f"{cfg.get('model_type') if isinstance(cfg, dict) else None!r})")
    model = cfg.get("config", {})
    out = {"num_rx_ant": int(model.get("num_rx_ant", 1)),
           "max_bits_per_symbol": int(model.get("max_bits_per_symbol", 8))}
    data = (cfg.get("training") or {}).get("data_config") or {}
    for k in ("num_prbs", "num_dmrs_symbols", "subcarrier_spacing_khz"):
        if k in data:
            out[k] = int(data[k])
    return out
