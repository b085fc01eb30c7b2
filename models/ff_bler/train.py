"""Offline forward-forward training (layer-local losses, Adam), for any labelled data set.

Each mini-batch pairs every sample with its true label (positive) and with a label drawn
uniformly from the others (negative); every layer then takes an Adam step on its own loss
(softplus, eq. 4, or quadratic, eq. 6) computed from its input, which is the output of the
layers below for the same samples (no gradient crosses layers). Offline training runs in
TensorFlow (compiled per layer); the online LightTune update uses the closed form instead.
"""
from __future__ import annotations

from typing import Callable, Literal

import numpy as np

from models.ff_bler.ffnet import FFNet

LossName = Literal["softplus", "quadratic"]


def ff_inputs(x: np.ndarray, labels: np.ndarray, encode: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """[N, d] features and [N] label indices -> [N, d + k] network inputs."""
    return np.concatenate([x, encode(labels)], axis=1).astype(np.float32)


def predict_classes(net: FFNet, x: np.ndarray, num_classes: int, encode, batch: int = 4096) -> np.ndarray:
    """argmax over labels of the last layer's goodness (eq. 5): [N] class indices."""
    out = []
    for s in range(0, len(x), batch):
        xb = x[s:s + batch]
        n = len(xb)
        xin = ff_inputs(np.repeat(xb, num_classes, axis=0), np.tile(np.arange(num_classes), n), encode)
        out.append(np.argmax(net.goodness(xin).reshape(n, num_classes), axis=1))
    return np.concatenate(out)


def train_ff(net: FFNet, x: np.ndarray, y: np.ndarray, num_classes: int, encode, *, loss: LossName,
             epochs: int, batch: int = 64, lr: float = 0.01, rng: np.random.Generator,
             on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
    """Train ``net`` in place; returns the mean summed layer loss per epoch."""
    import tensorflow as tf

    T = net.threshold
    Ws = [tf.Variable(W) for W in net.W]
    bs = [tf.Variable(b) for b in net.b]
    opts = [tf.keras.optimizers.Adam(learning_rate=lr) for _ in Ws]

    def layer_loss(h_pos, h_neg):
        gp, gn = h_pos * h_pos - T, h_neg * h_neg - T
        if loss == "softplus":
            return tf.reduce_mean(tf.math.softplus(-gp)) + tf.reduce_mean(tf.math.softplus(gn))
        return tf.reduce_mean(gp * gp - 4.0 * gp) + tf.reduce_mean(gn * gn + 4.0 * gn)

    @tf.function
    def step(x_pos, x_neg):
        total = tf.constant(0.0)
        hp, hn = x_pos, x_neg
        for l in range(len(Ws)):
            with tf.GradientTape() as tape:
                zp = tf.matmul(hp, Ws[l], transpose_b=True) + bs[l]
                zn = tf.matmul(hn, Ws[l], transpose_b=True) + bs[l]
                ap, an = tf.nn.relu(zp), tf.nn.relu(zn)
                ll = layer_loss(ap, an)
            grads = tape.gradient(ll, [Ws[l], bs[l]])
            opts[l].apply_gradients(zip(grads, [Ws[l], bs[l]]))
            total += ll
            hp, hn = tf.stop_gradient(ap), tf.stop_gradient(an)
            if net.normalize_hidden:
                hp = hp / (tf.norm(hp, axis=-1, keepdims=True) + 1e-8)
                hn = hn / (tf.norm(hn, axis=-1, keepdims=True) + 1e-8)
        return total

    history = []
    n = len(x)
    for epoch in range(epochs):
        order = rng.permutation(n)
        losses = []
        for s in range(0, n, batch):
            idx = order[s:s + batch]
            neg = (y[idx] + rng.integers(1, num_classes, size=len(idx))) % num_classes
            losses.append(float(step(tf.constant(ff_inputs(x[idx], y[idx], encode)),
                                     tf.constant(ff_inputs(x[idx], neg, encode)))))
        history.append(float(np.mean(losses)))
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    for l in range(len(Ws)):
        net.W[l], net.b[l] = Ws[l].numpy(), bs[l].numpy()
    return history
