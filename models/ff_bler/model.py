"""LightTune: a forward-forward BLER predictor that fine-tunes online without backpropagation.

Regression by classification (paper, Remark 4): BLER is quantised in steps of 0.1 into 11
classes; the network input is the 12 standardised link features with the candidate BLER
label appended ([13]); the prediction is the label of largest goodness (eq. 5).

Online (Algorithm 1): when |predicted - observed| >= delta, the observed BLER's class is a
positive sample and another class a negative one (``uniform``: drawn uniformly from the
other classes; ``hard``: the wrong prediction), and every layer takes one closed-form
gradient step of the quadratic loss (eq. 6-7), layer by layer, with ``one_step_adam``
(moments reset, t_A = 1) or ``adam`` (moments kept). No tape, no replay buffer.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from models.base import BLER_FEATURES, Update, compute_us
from models.checkpoint import dense_layer_shapes, load_checkpoint, verify_checkpoint
from models.feature_scaling import check_scaling, standardize
from models.ff_bler.config import LightTuneConfig
from models.ff_bler.ffnet import FFNet, LayerAdam
from models.registry import register_model

FEATURE_NAMES = BLER_FEATURES
CQI_INDEX = FEATURE_NAMES.index("cqi")
FLOAT_TOL = 1e-9


@dataclass
class FFBlerConfig:
    sizes: tuple[int, ...] = (13, 32, 32)
    threshold: float = 9.0
    # "scalar": the paper's single BLER input (13 inputs); "onehot": 11 label inputs (23 inputs),
    # because a ReLU layer's goodness is convex in a scalar label (see train.train_bler_predictor)
    label_encoding: Literal["scalar", "onehot"] = "scalar"
    normalize_hidden: bool = False
    # "neuron": eq. 4/6 on every neuron's h^2 (the paper); "layer": on the layer's sum of h^2 (ffnet.py)
    goodness: Literal["neuron", "layer"] = "neuron"
    bler_step: float = 0.1
    feature_mean: list[float] = field(default_factory=lambda: [0.0] * len(FEATURE_NAMES))
    feature_std: list[float] = field(default_factory=lambda: [1.0] * len(FEATURE_NAMES))

    @property
    def num_classes(self) -> int:
        return int(round(1.0 / self.bler_step)) + 1


@register_model("ff_bler")
class FFBlerPredictor:
    """Forward-forward BLER predictor (LightTune).

    predict:  features [batch, 12] float32, cqi [batch] int -> bler [batch] float32 in {0, 0.1, ..., 1}
    observe:  features [12], cqi int, bler_observed float, bler_predicted float | None
              -> Update | None (None: error below delta)

    ``net`` holds the weights in force (``predict``); an update is computed on the UE's training
    copy ``work`` (carried from one update to the next, with its Adam moments) and ``apply()``
    copies it into ``net``.
    """

    Config = FFBlerConfig

    def __init__(self, config: FFBlerConfig | None = None, online: LightTuneConfig | None = None,
                 rng: np.random.Generator | None = None, net: FFNet | None = None):
        self.config = config or FFBlerConfig()
        self.online = online or LightTuneConfig(policy="none")
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.net = net or FFNet(self.config.sizes, self.config.threshold, self.rng,
                                normalize_hidden=self.config.normalize_hidden, goodness=self.config.goodness)
        self._mean = np.asarray(self.config.feature_mean, np.float32)
        self._std = np.asarray(self.config.feature_std, np.float32)
        self.labels = (np.arange(self.config.num_classes) * self.config.bler_step).astype(np.float32)
        # network input appended to the features for each label: [num_classes, 1] or [num_classes, num_classes]
        self.label_inputs = (self.labels[:, None] if self.config.label_encoding == "scalar"
                             else np.eye(self.config.num_classes, dtype=np.float32))
        expected = len(self._mean) + self.label_inputs.shape[1]
        if self.net.sizes[0] != expected:
            raise ValueError(f"FF input size {self.net.sizes[0]} != {len(self._mean)} features + "
                             f"{self.label_inputs.shape[1]} label inputs ({self.config.label_encoding})")
        self.work = copy.deepcopy(self.net)       # the UE's training copy (see the class docstring)
        self._opts = [LayerAdam([W.shape, b.shape], self.online.learning_rate,
                                one_step=self.online.optimizer == "one_step_adam")
                      for W, b in zip(self.net.W, self.net.b)]

    @staticmethod
    def check_checkpoint(checkpoint: str) -> None:
        """The checkpoint whole (``verify_checkpoint``): a weight and a bias per layer of its ``sizes``
        (W_l [sizes[l+1], sizes[l]]) and finite feature scaling, one value per BLER feature."""
        cfg = verify_checkpoint(checkpoint, None, ("sizes", "feature_mean", "feature_std"), "ff_bler checkpoint")
        verify_checkpoint(checkpoint, dense_layer_shapes(cfg["sizes"], transposed=False), (), "ff_bler checkpoint")
        check_scaling(checkpoint, cfg, len(BLER_FEATURES))

    @classmethod
    def load(cls, checkpoint: str | None, online: LightTuneConfig, rng: np.random.Generator) -> "FFBlerPredictor":
        """From a checkpoint (weights + FFBlerConfig), or untrained weights when ``checkpoint`` is None."""
        if checkpoint is None:
            return cls(online=online, rng=rng)
        cfg_dict, weights = load_checkpoint(checkpoint)
        # the checkpoint's config also records how it was trained ("training"); the model needs the rest
        fields = {k: v for k, v in cfg_dict.items() if k in FFBlerConfig.__dataclass_fields__}
        cfg = FFBlerConfig(**{**fields, "sizes": tuple(fields.get("sizes", (13, 32, 32)))})
        pred = cls(cfg, online, rng=rng)
        pred.net.set_weights(weights)
        pred.work = copy.deepcopy(pred.net)
        return pred

    # -- inference ------------------------------------------------------------------------------
    def _inputs(self, features: np.ndarray, cqi: np.ndarray | None) -> np.ndarray:
        f = np.array(features, dtype=np.float32, ndmin=2)
        if cqi is not None:
            f[:, CQI_INDEX] = np.asarray(cqi, np.float32).reshape(-1)
        return standardize(f, self._mean, self._std)

    def goodness_table(self, features: np.ndarray, cqi: np.ndarray | None = None) -> np.ndarray:
        """Goodness of every label: [batch, num_classes]."""
        x = self._inputs(features, cqi)                                     # [B, 12]
        b, c = x.shape[0], len(self.labels)
        xin = np.concatenate([np.repeat(x, c, axis=0), np.tile(self.label_inputs, (b, 1))], axis=1)
        return self.net.goodness(xin).reshape(b, c)

    def predict_class(self, features: np.ndarray, cqi: np.ndarray | None = None) -> np.ndarray:
        return np.argmax(self.goodness_table(features, cqi), axis=1)

    def predict(self, features: np.ndarray, cqi: np.ndarray | None = None) -> np.ndarray:
        return self.labels[self.predict_class(features, cqi)]

    # -- online fine-tuning (Algorithm 1) -------------------------------------------------------
    def label_class(self, bler: float) -> int:
        return int(np.clip(np.rint(bler / self.config.bler_step), 0, len(self.labels) - 1))

    def observe(self, features: np.ndarray, cqi: int, bler_observed: float,
                bler_predicted: float | None = None) -> Update | None:
        """``bler_predicted``: the prediction made at the start of the period (Algorithm 1 compares
        that one); None predicts now with the current weights."""
        if self.online.policy == "none" or not np.isfinite(bler_observed):
            return None
        x = self._inputs(features, np.array([cqi]))[0]
        pred_cls = (self.label_class(bler_predicted) if bler_predicted is not None
                    else int(self.predict_class(features, np.array([cqi]))[0]))
        # exact decimal label (k * step in float64), so an error of exactly delta fires
        error = abs(pred_cls * self.config.bler_step - float(bler_observed))
        if error < self.online.delta - FLOAT_TOL:
            return None
        pos = self.label_class(bler_observed)
        if self.online.negatives == "hard" and pred_cls != pos:
            neg = pred_cls
        else:
            others = [c for c in range(len(self.labels)) if c != pos]
            neg = int(self.rng.choice(others))
        loss_before, loss_after, touched = self.update(x, pos, neg)
        new = self.work.get_weights()
        new = {k: v.copy() for k, v in new.items()}

        def apply() -> dict:
            self.net.set_weights(new)
            return {}

        return Update(model="ff_bler", trigger=f"error {error:.3f} >= delta {self.online.delta}",
                      trigger_value=error, compute_us=compute_us(self.update_flops(), self.online.ue_gflops),
                      apply=apply, loss_before=loss_before, loss_after=loss_after, state_bytes=touched)

    def update_flops(self) -> float:
        """Modelled FLOPs of one update: per layer, the forward pass of the positive/negative pair
        (2 x 2 FLOPs a weight), the closed-form gradients (the same again) and the Adam step on
        every weight and bias (~10 FLOPs each)."""
        n = sum(W.size for W in self.work.W)
        nb = sum(b.size for b in self.work.b)
        return 2 * 2.0 * n + 2 * 2.0 * n + 10.0 * (n + nb)

    def update(self, x_std: np.ndarray, pos: int, neg: int, losses: bool = True) -> tuple[float, float, int]:
        """One closed-form step per layer of the training copy ``work`` on the positive/negative pair
        of one standardised input. Returns (sum of layer losses before, after (NaN unless ``losses``), bytes of state touched)."""
        net = self.work
        d = len(x_std)
        pair = np.empty((2, d + self.label_inputs.shape[1]), net.dtype)   # [positive; negative] inputs
        pair[:, :d] = x_std
        pair[0, d:], pair[1, d:] = self.label_inputs[pos], self.label_inputs[neg]
        h = pair
        before = after = 0.0
        touched = 0
        for l in range(net.num_layers):
            x = net.layer_input(l, h)
            dW, db, loss, h = net.quad_grads_stacked(l, x, 1, with_loss=losses)
            self._opts[l].step([net.W[l], net.b[l]], [dW, db])
            before += loss
            after += net.quad_loss(l, x[:1], x[1:]) if losses else float("nan")
            # weights, gradients and two Adam moments of this layer, plus its inputs and outputs
            touched += 4 * (net.W[l].nbytes + net.b[l].nbytes) + x.nbytes + h.nbytes
        return before, after, touched

