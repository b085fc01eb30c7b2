"""DeepRx as the link-level chain's neural receiver (``phy.receiver: neural``).

``DeepRxReceiver`` has the ``simulator.phy.link_level.NeuralReceiver`` protocol: ``llr_grid``
is traced into the chain's compiled call (features from ``make_features`` on the received
grid, the DMRS pilot grid and the noise variance, then ``DeepRx.forward`` with the weights
passed as arguments), so one XLA call per MCS and batch evaluates TX, channel, DeepRx, the
comparison receivers and the LDPC decoder.

``checkpoint_grid`` reads the grid a checkpoint fits without importing TensorFlow (the
scenario schema calls it): the model's receive antennas and LLRs per RE, and, for a
checkpoint from ``airtune train deeprx``, the data config's PRBs, DMRS symbols and
subcarrier spacing.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from models.checkpoint import read_checkpoint_config

RECEIVER_TYPES = ("deeprx",)


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


class DeepRxReceiver:
    """A DeepRx model as the chain's neural receiver (see the module docstring).

    llr_grid: y [B, A, 14, S] complex64, pilots [B, 14, S] complex64, no [B] float32, params
              (tensors in ``model.params`` order) -> llr [B, 14, S, max_bits_per_symbol] float32
    """

    def __init__(self, model):
        self.model = model
        self.num_rx_ant = model.config.num_rx_ant
        self.max_bits_per_symbol = model.config.max_bits_per_symbol
        self.graph_key = ("deeprx", model.config)

    @classmethod
    def load(cls, checkpoint: str | Path) -> "DeepRxReceiver":
        from models.deeprx.model import DeepRx

        return cls(DeepRx.load(checkpoint))

    def llr_grid(self, y, pilots, no, params):
        import tensorflow as tf

        from models.deeprx.model import make_features

        x = make_features(y, pilots, no, self.model.config.dtype)
        return tf.cast(self.model.forward(x, list(params)), tf.float32)

    def weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.model.params]


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> DeepRxReceiver:
    return DeepRxReceiver.load(path)


def load_receiver(receiver_type: str, checkpoint: str | Path) -> DeepRxReceiver:
    """The receiver of ``models.receiver`` (cached per checkpoint file version: the backend copies
    the weights, so sharing the object between simulations is safe)."""
    if receiver_type not in RECEIVER_TYPES:
        raise ValueError(f"unknown receiver type {receiver_type!r}; valid: {', '.join(RECEIVER_TYPES)}")
    p = Path(checkpoint).resolve()
    st = p.stat()
    return _load_cached(str(p), st.st_mtime_ns, st.st_size)
