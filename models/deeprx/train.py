"""Offline training of DeepRx on a dataset from ``airtune data deeprx`` (``airtune train deeprx``).

Adam on the masked BCE (the paper's training loss), with a constant learning rate or a cosine
decay to ``lr_final_fraction`` of it over the steps; each step's mini-batch is drawn uniformly
(without replacement within the batch) from the training part. Training can continue from a
checkpoint (``init``; its own training record is kept in the new one). The dataset's last ``holdout_fraction`` of
samples (by index) is held out; the training part is the first ``num_samples`` of the rest
(the issue's 200k / 800k regimes are ``--samples``). The checkpoint records which sample indices
were trained on, so influence scores can name them.

Held-out metrics: masked BCE and uncoded BER of DeepRx, and, given ``reference_llrs`` (dataset
samples -> LLRs of reference receivers; ``airtune train deeprx`` passes the NR chain's LS+LMMSE
and genie LMMSE, ``simulator.datagen.deeprx.reference_receivers``), their BER on the same slots.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from models.checkpoint import read_checkpoint_config
from models.deeprx.data import load_dataset, read_description, subset, to_batch
from models.deeprx.model import DeepRx, DeepRxConfig, hard_ber

# dataset arrays -> {reference receiver name: LLRs [n, 14, sc, B] float32 on the arrays' bit grid}
ReferenceLlrs = Callable[[dict], dict[str, np.ndarray]]


@dataclass(frozen=True)
class DeepRxTrainConfig:
    preset: str = "small"
    steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"        # "constant" or "cosine" (decay to lr_final_fraction * learning_rate)
    lr_final_fraction: float = 0.05
    num_samples: int | None = None       # training samples (None: all but the held-out part)
    holdout_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.num_samples is not None and self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if not 0 <= self.lr_final_fraction <= 1:
            raise ValueError(f"lr_final_fraction must be in [0, 1], got {self.lr_final_fraction}")

    def learning_rate_schedule(self):
        """What Adam gets: the float, or a Keras CosineDecay over ``steps``."""
        if self.lr_schedule == "constant":
            return self.learning_rate
        import tensorflow as tf

        return tf.keras.optimizers.schedules.CosineDecay(self.learning_rate, self.steps, alpha=self.lr_final_fraction)


def split_rows(num_total: int, cfg: DeepRxTrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-out rows) of a dataset with num_total samples."""
    n_hold = max(1, math.ceil(cfg.holdout_fraction * num_total))
    n_avail = num_total - n_hold
    if n_avail < 1:
        raise ValueError(f"a dataset of {num_total} samples leaves none for training")
    if cfg.num_samples is not None and cfg.num_samples > n_avail:
        raise ValueError(f"asked for {cfg.num_samples} training samples; the dataset has {n_avail} "
                         f"(+{n_hold} held out)")
    return np.arange(cfg.num_samples or n_avail), np.arange(n_avail, num_total)


def evaluate(model: DeepRx, arrays: dict, rows: np.ndarray, reference_llrs: ReferenceLlrs | None = None,
             chunk: int = 64) -> dict[str, float]:
    """Held-out masked BCE and BER of ``model`` (+ the reference receivers' BER given ``reference_llrs``)."""
    import tensorflow as tf

    loss = model.per_sample_loss("bce")
    bce, ber, ref = [], [], {}
    width = model.config.max_bits_per_symbol
    for a in range(0, len(rows), chunk):
        r = rows[a:a + chunk]
        batch = to_batch(arrays, width, model.config.dtype, rows=r)
        bce.append(loss(model.params, batch).numpy())
        ber.append(hard_ber(model(batch["x"]), batch["bits"], batch["mask"]).numpy())
        if reference_llrs is not None:
            for rx, llr in reference_llrs(subset(arrays, r)).items():
                llr = np.pad(llr, [(0, 0)] * 3 + [(0, width - llr.shape[-1])])
                llr = tf.constant(llr, batch["bits"].dtype)
                ref.setdefault(rx, []).append(hard_ber(llr, batch["bits"], batch["mask"]).numpy())
    out = {"holdout_bce": float(np.mean(np.concatenate(bce))), "holdout_ber": float(np.mean(np.concatenate(ber)))}
    for rx, v in ref.items():
        out[f"holdout_ber_{rx}"] = float(np.mean(np.concatenate(v)))
    return out


def train_deeprx(arrays: dict, cfg: DeepRxTrainConfig, reference_llrs: ReferenceLlrs | None = None,
                 model: DeepRx | None = None, log=None) -> tuple[DeepRx, dict]:
    """Train (a new ``cfg.preset`` model unless ``model`` is given); returns (model, metrics)."""
    import tensorflow as tf

    train_rows, hold_rows = split_rows(len(arrays["index"]), cfg)
    model = model or DeepRx(DeepRxConfig.preset(cfg.preset), seed=cfg.seed)
    loss = model.per_sample_loss("bce")
    opt = tf.keras.optimizers.Adam(cfg.learning_rate_schedule())
    width = model.config.max_bits_per_symbol

    @tf.function(reduce_retracing=True)
    def step(batch):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss(model.params, batch))
        opt.apply_gradients(zip(tape.gradient(value, model.params), model.params))
        return value

    rng = np.random.default_rng(cfg.seed)
    losses = []
    t0 = time.perf_counter()
    for k in range(cfg.steps):
        rows = rng.choice(train_rows, size=min(cfg.batch_size, len(train_rows)), replace=False)
        losses.append(float(step(to_batch(arrays, width, model.config.dtype, rows=np.sort(rows)))))
        if log is not None and (k + 1) % max(1, cfg.steps // 10) == 0:
            log(f"step {k + 1}/{cfg.steps}: bce {np.mean(losses[-max(1, cfg.steps // 10):]):.4f} "
                f"({time.perf_counter() - t0:.0f} s)")
    metrics = {"steps": cfg.steps, "wall_s": round(time.perf_counter() - t0, 1),
               "train_bce_last": float(np.mean(losses[-max(1, cfg.steps // 10):])),
               "train_bce_first": float(np.mean(losses[:max(1, cfg.steps // 10)])),
               "train_index": [int(arrays["index"][train_rows[0]]), int(arrays["index"][train_rows[-1]]) + 1],
               "holdout_index": [int(arrays["index"][hold_rows[0]]), int(arrays["index"][hold_rows[-1]]) + 1]}
    metrics.update(evaluate(model, arrays, hold_rows, reference_llrs))
    return model, metrics


def load_and_train(data_dir, cfg: DeepRxTrainConfig, out, command: str = "", log=None, init=None,
                   reference_llrs: ReferenceLlrs | None = None):
    """``airtune train deeprx``: train on a dataset folder and write the checkpoint (its "training"
    entry holds the config, the data folder and config, the sample index ranges and the metrics;
    with ``init``, a checkpoint to continue from, also that path and its own "training" entry).
    Returns (checkpoint path, metrics)."""
    data_dir = Path(data_dir)
    try:
        data_doc = read_description(data_dir)
    except ValueError as exc:
        raise ValueError(f"--data: {exc}") from None
    model, init_entry = None, {}
    if init is not None:
        model = DeepRx.load(init)
        if model.config.to_dict() != DeepRxConfig.preset(cfg.preset).to_dict():
            raise ValueError(f"--init: {init} is not a {cfg.preset!r} deeprx")
        init_entry = {"init": {"checkpoint": str(init), "training": read_checkpoint_config(init, "deeprx").training}}
    model, metrics = train_deeprx(load_dataset(data_dir), cfg, reference_llrs, model=model, log=log)
    path = model.save(out, training={**metrics, "config": asdict(cfg), "data": str(data_dir),
                                     "data_config": data_doc["config"],
                                     "data_format_version": data_doc.get("format_version", 1),
                                     "command": command, **init_entry})
    return path, metrics
