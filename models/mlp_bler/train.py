"""Offline backprop training of the MLP baseline (LightTune paper, Table V): Adam at 1e-3 with
cosine decay restarting every 10 epochs down to 1e-5, binary cross-entropy on the observed
BLER (a probability), Keras."""
from __future__ import annotations

from typing import Callable

import numpy as np

from models.feature_scaling import HoldoutSplit

MIN_LR = 1e-5
RESTART_EPOCHS = 10


def train_mlp_bler(features: np.ndarray, bler: np.ndarray, *, epochs: int = 250, lr: float = 1e-3,
                   batch: int = 256, seed: int = 0, holdout: float = 0.2, sizes=(12, 64, 64, 1),
                   log: Callable[[str], None] | None = None):
    """features [N, 12], bler [N] -> (MlpBlerConfig, weights, metrics with held-out MAE).

    The split (same seed, same ``holdout``) is the one ``ff_bler.train`` uses, so the two
    held-out errors compare.
    """
    import tensorflow as tf

    from models.mlp_bler.model import MlpBlerConfig, MlpBlerPredictor

    split = HoldoutSplit(features, seed, holdout)
    train, x, mean, std = split.train, split.x, split.mean, split.std
    y = np.asarray(bler, np.float32)

    tf.keras.utils.set_random_seed(seed)
    steps_per_epoch = int(np.ceil(len(train) / batch))
    schedule = tf.keras.optimizers.schedules.CosineDecayRestarts(
        lr, first_decay_steps=RESTART_EPOCHS * steps_per_epoch, t_mul=1.0, m_mul=1.0, alpha=MIN_LR / lr)
    model = tf.keras.Sequential([tf.keras.Input((sizes[0],))]
                                + [tf.keras.layers.Dense(m, activation="relu") for m in sizes[1:-1]]
                                + [tf.keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=tf.keras.optimizers.Adam(schedule), loss="binary_crossentropy")
    cb = [tf.keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: log(f"epoch {e + 1}/{epochs}: loss {logs['loss']:.4f}"))] if log else []
    model.fit(x[train], y[train], batch_size=batch, epochs=epochs, verbose=0, callbacks=cb, shuffle=True)

    cfg = MlpBlerConfig(sizes=tuple(sizes), feature_mean=mean.astype(float).tolist(),
                        feature_std=std.astype(float).tolist())
    pred = MlpBlerPredictor(cfg)
    dense = [l for l in model.layers if isinstance(l, tf.keras.layers.Dense)]
    pred.set_weights({**{f"W{l}": d.kernel.numpy() for l, d in enumerate(dense)},
                      **{f"b{l}": d.bias.numpy() for l, d in enumerate(dense)}})
    return cfg, pred.get_weights(), {**split.metrics(pred.predict, features, bler), "epochs": epochs, "lr": lr,
                                     "loss": "binary_crossentropy"}
