"""Training loops for the conv CSI codec: offline RD training (eq. 9) and the fine-tuning of the
full-model scheme (eq. 21). Adam; mini-batches drawn with an explicit rng.

Each trainer compiles its step once and keeps it: tracing a step with Keras' Adam costs seconds
on CPU, far more than a short online fine-tuning, so a UE builds its fine-tuner once and calls
``run`` at every update (the reference weights are variables the step reads, and the Adam state
is reset per run, so runs are independent).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from models.csi_codec.model import ConvCsiCodec, full_model_loss, rd_loss

LogFn = Callable[[int, dict], None]


class _Trainer:
    def __init__(self, variables: Sequence[tf.Variable], learning_rate: float):
        self.variables = list(variables)
        self.optimizer = tf.keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.variables)
        self._step = tf.function(self._step_impl)

    def _loss(self, xb: tf.Tensor) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def _step_impl(self, xb):
        with tf.GradientTape() as tape:
            terms = self._loss(xb)
        self.optimizer.apply_gradients(zip(tape.gradient(terms["loss"], self.variables), self.variables))
        return terms

    def reset_optimizer(self) -> None:
        """Fresh Adam moments and step count (the learning rate, also an optimizer variable, stays)."""
        opt = self.optimizer
        for v in [opt.iterations, *opt._momentums, *opt._velocities]:
            v.assign(tf.zeros_like(v))

    def _loop(self, x: np.ndarray, steps: int, batch: int, rng: np.random.Generator,
              log: LogFn | None, log_every: int) -> dict[str, float]:
        x = np.asarray(x, np.float32)
        if steps < 1 or batch < 1 or len(x) < 1:
            raise ValueError(f"need steps >= 1, batch >= 1 and data, got steps={steps}, batch={batch}, n={len(x)}")
        last = {}
        for i in range(steps):
            idx = rng.choice(len(x), size=min(batch, len(x)), replace=False)
            last = {k: float(v) for k, v in self._step(tf.constant(x[idx])).items()}
            if log is not None and (i % log_every == 0 or i == steps - 1):
                log(i, last)
        return last


class RdTrainer(_Trainer):
    """Minimises the RD loss (eq. 9) over ``variables`` (default: all of the codec's; the
    encoder-only scheme passes ``codec.encoder_side_variables``)."""

    def __init__(self, codec: ConvCsiCodec, lmbda: float, learning_rate: float = 1e-3,
                 variables: Sequence[tf.Variable] | None = None):
        self.codec, self.lmbda = codec, float(lmbda)
        super().__init__(codec.trainable_variables if variables is None else variables, learning_rate)

    def _loss(self, xb):
        return rd_loss(self.codec, xb, self.lmbda, training=True)

    def run(self, x: np.ndarray, steps: int, batch: int = 32, rng: np.random.Generator | None = None,
            log: LogFn | None = None, log_every: int = 100) -> dict[str, float]:
        """x [n, ant, sc, 2]; returns the last step's terms (loss, rate, distortion, nmse_db)."""
        return self._loop(x, steps, batch, rng if rng is not None else np.random.default_rng(0), log, log_every)


class FullModelFineTuner(_Trainer):
    """Full-model fine-tuning (eq. 21): encoder, decoder and entropy model, with the decoder side
    seen through old + Q(current - old) and the update's rate in the loss. After ``run`` the UE
    codes the update (``CsiEncoderSide.make_update``)."""

    def __init__(self, codec: ConvCsiCodec, quantizer, prior, lmbda: float, beta: float,
                 reports_per_update: float, learning_rate: float = 1e-4):
        self.codec, self.quantizer, self.prior = codec, quantizer, prior
        self.lmbda, self.beta, self.reports_per_update = float(lmbda), float(beta), float(reports_per_update)
        self.old = [tf.Variable(v, trainable=False) for v in codec.decoder_side_variables]
        super().__init__(list(codec.encoder_side_variables) + list(codec.decoder_side_variables), learning_rate)

    def _loss(self, xb):
        return full_model_loss(self.codec, xb, self.old, self.quantizer, self.prior, self.lmbda, self.beta,
                               self.reports_per_update)

    def run(self, x: np.ndarray, old_decoder_side: Sequence[np.ndarray], steps: int, batch: int = 32,
            rng: np.random.Generator | None = None, log: LogFn | None = None,
            log_every: int = 100) -> dict[str, float]:
        """Fine-tune on x [n, ant, sc, 2] against the decoder side the gNB holds."""
        if len(old_decoder_side) != len(self.old):
            raise ValueError(f"old_decoder_side has {len(old_decoder_side)} tensors, expected {len(self.old)}")
        for v, o in zip(self.old, old_decoder_side):
            v.assign(np.asarray(o, np.float32))
        self.reset_optimizer()
        return self._loop(x, steps, batch, rng if rng is not None else np.random.default_rng(0), log, log_every)
