"""The protocols through which the engine calls models (one per model slot).

The engine imports only these; models know nothing of SimPy. Shapes and units in names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Update:
    """One online model update (a row of ``updates.parquet``)."""
    model: str
    trigger: str                   # what fired it, e.g. "error>=delta"
    compute_us: int                # wall time of the update computation
    update_bits: int = 0           # bits sent over a link to apply it (0: local to the UE)
    loss_before: float = float("nan")
    loss_after: float = float("nan")
    extra: dict = field(default_factory=dict)


class BlerPredictor(Protocol):
    """Short-term BLER predictor.

    predict:  features [batch, num_features] float32, cqi [batch] int -> bler [batch] float32 in [0, 1]
    observe:  features [num_features], cqi int, bler_observed float -> Update | None (None: no update)
    """

    def predict(self, features: np.ndarray, cqi: np.ndarray) -> np.ndarray: ...

    def observe(self, features: np.ndarray, cqi: int, bler_observed: float) -> Update | None: ...
