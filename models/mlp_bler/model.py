"""The offline ML baseline of the LightTune paper (its ref. [16], Table V): a backprop MLP
12 x 64 x 64 x 1 regressing the period's BLER from the same 12 features, with no online
updates. It is the "offline-ML" row of the throughput comparison; CQI-Tune can use it like
any other BLER predictor.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.base import BLER_FEATURES, Update
from models.checkpoint import dense_layer_shapes, load_checkpoint, verify_checkpoint
from models.feature_scaling import check_scaling, standardize
from models.ff_bler.config import LightTuneConfig
from models.registry import register_model

CQI_INDEX = BLER_FEATURES.index("cqi")


@dataclass
class MlpBlerConfig:
    sizes: tuple[int, ...] = (12, 64, 64, 1)
    feature_mean: list[float] = field(default_factory=lambda: [0.0] * len(BLER_FEATURES))
    feature_std: list[float] = field(default_factory=lambda: [1.0] * len(BLER_FEATURES))


@register_model("mlp_bler")
class MlpBlerPredictor:
    """ReLU MLP with a sigmoid output; inference in numpy (a few kFLOPs per call).

    predict:  features [batch, 12] float32, cqi [batch] int -> bler [batch] float32 in [0, 1]
    observe:  always None (offline model)
    """

    supports_online = False

    def __init__(self, config: MlpBlerConfig | None = None, rng: np.random.Generator | None = None):
        self.config = config or MlpBlerConfig()
        rng = rng if rng is not None else np.random.default_rng(0)
        s = self.config.sizes
        if s[0] != len(BLER_FEATURES) or s[-1] != 1:
            raise ValueError(f"MLP sizes {s}: must start with {len(BLER_FEATURES)} features and end with 1")
        self.W = [(rng.standard_normal((d, m)) * np.sqrt(2.0 / d)).astype(np.float32) for d, m in zip(s[:-1], s[1:])]
        self.b = [np.zeros(m, np.float32) for m in s[1:]]
        self._mean = np.asarray(self.config.feature_mean, np.float32)
        self._std = np.asarray(self.config.feature_std, np.float32)

    @staticmethod
    def check_checkpoint(checkpoint: str) -> None:
        """The checkpoint whole (``verify_checkpoint``): a weight and a bias per layer of its ``sizes``
        (W_l [sizes[l], sizes[l+1]]) and finite feature scaling, one value per BLER feature."""
        cfg = verify_checkpoint(checkpoint, None, ("sizes", "feature_mean", "feature_std"), "mlp_bler checkpoint")
        verify_checkpoint(checkpoint, dense_layer_shapes(cfg["sizes"], transposed=True), (), "mlp_bler checkpoint")
        check_scaling(checkpoint, cfg, len(BLER_FEATURES))

    @classmethod
    def load(cls, checkpoint: str | None, online: LightTuneConfig, rng: np.random.Generator) -> "MlpBlerPredictor":
        if online.policy != "none":
            raise ValueError("mlp_bler is an offline model: online.policy must be 'none'")
        if checkpoint is None:
            return cls(rng=rng)
        cfg_dict, weights = load_checkpoint(checkpoint)
        fields = {k: v for k, v in cfg_dict.items() if k in MlpBlerConfig.__dataclass_fields__}
        pred = cls(MlpBlerConfig(**{**fields, "sizes": tuple(fields.get("sizes", (12, 64, 64, 1)))}), rng=rng)
        pred.set_weights(weights)
        return pred

    def get_weights(self) -> dict[str, np.ndarray]:
        return {**{f"W{l}": W for l, W in enumerate(self.W)}, **{f"b{l}": b for l, b in enumerate(self.b)}}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        for l in range(len(self.W)):
            W, b = np.asarray(weights[f"W{l}"], np.float32), np.asarray(weights[f"b{l}"], np.float32)
            if W.shape != self.W[l].shape or b.shape != self.b[l].shape:
                raise ValueError(f"layer {l}: weights {W.shape}/{b.shape} do not fit {self.W[l].shape}/"
                                 f"{self.b[l].shape}")
            self.W[l], self.b[l] = W, b

    def predict(self, features: np.ndarray, cqi: np.ndarray | None = None) -> np.ndarray:
        f = np.array(features, dtype=np.float32, ndmin=2)
        if cqi is not None:
            f[:, CQI_INDEX] = np.asarray(cqi, np.float32).reshape(-1)
        h = standardize(f, self._mean, self._std)
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            h = h @ W + b
            if l < len(self.W) - 1:
                h = np.maximum(h, 0.0)
        return (1.0 / (1.0 + np.exp(-h[:, 0]))).astype(np.float32)

    def observe(self, features: np.ndarray, cqi: int, bler_observed: float,
                bler_predicted: float | None = None) -> Update | None:
        return None
