"""The protocols through which the engine calls models (one per model slot).

The engine imports only these; models know nothing of SimPy. Shapes and units in names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


# The BLER predictor's input features, in this order (the simulator computes them at every
# CSI-RS occasion; see simulator/bler_features.py).
BLER_FEATURES = (
    "csi_rs_snr_db", "csi_rs_capacity_bps_hz", "delay_spread_ns", "doppler_hz",
    "pdsch_sinr_db_0", "pdsch_sinr_db_1", "pdsch_sinr_db_2", "pdsch_sinr_db_3",
    "rank", "cqi", "num_rbs", "num_dmrs_symbols",
)


@dataclass
class Update:
    """One online model update (a row of ``updates.parquet``)."""
    model: str
    trigger: str                   # what fired it, e.g. "error>=delta"
    compute_us: int                # wall time of the update computation
    trigger_value: float = float("nan")   # the quantity compared with the trigger's threshold
    state_bytes: int = 0           # bytes of model state the update read or wrote
    update_bits: int = 0           # bits sent over a link to apply it (0: local to the UE)
    loss_before: float = float("nan")
    loss_after: float = float("nan")
    extra: dict = field(default_factory=dict)


class BlerPredictor(Protocol):
    """Short-term BLER predictor.

    predict:  features [batch, num_features] float32, cqi [batch] int -> bler [batch] float32 in [0, 1]
    observe:  features [num_features], cqi int, bler_observed float, bler_predicted float | None
              (the prediction made when the period started) -> Update | None (None: no update)
    """

    def predict(self, features: np.ndarray, cqi: np.ndarray) -> np.ndarray: ...

    def observe(self, features: np.ndarray, cqi: int, bler_observed: float,
                bler_predicted: float | None = None) -> Update | None: ...

    @classmethod
    def load(cls, checkpoint: str | None, online: dict, rng: np.random.Generator) -> "BlerPredictor": ...
