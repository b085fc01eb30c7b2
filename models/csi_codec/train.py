"""Training loops for the conv CSI codec: offline RD training (eq. 9) and the fine-tuning of the
full-model scheme (eq. 21). Adam; mini-batches drawn with an explicit rng.

The paper's schemes map onto them: ``encoder_only`` is ``RdTrainer`` over
``codec.encoder_side_variables`` (the decoder side does not change, nothing is sent);
``genie`` is ``RdTrainer`` over all variables with the new decoder side handed to the gNB for
free; ``full_model`` is ``FullModelFineTuner`` followed by ``CsiEncoderSide.make_update``.
``translation`` trains its own modules (``translation.TranslationFineTuner``). The event loop
drives all of them through ``online.OnlineCsiCodec``.

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


# -- offline training command ---------------------------------------------------------------------------
def evaluate(codec: ConvCsiCodec, x: np.ndarray, lmbda: float, batch: int = 256) -> dict[str, float]:
    """Inference-mode RD terms over x [n, ant, sc, 2] (rounded latents), plus the real coded size of
    the whole set in one stream and the mean size of one stream per report (bits per CSI dimension)."""
    from models.csi_codec.bitstream import LatentCoder

    x = np.asarray(x, np.float32)
    symbols, est = [], []
    err = ref = 0.0
    ratios = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        s, e = codec.compress(xb)
        x_hat = codec.decompress(s)
        symbols.append(s)
        est.append(e)
        e2 = np.sum((xb - x_hat) ** 2, axis=(1, 2, 3))
        r2 = np.sum(xb ** 2, axis=(1, 2, 3))
        ratios.append(e2 / r2)
        err += float(e2.sum())
        ref += float(r2.sum())
    symbols, est, ratios = np.concatenate(symbols), np.concatenate(est), np.concatenate(ratios)
    coder = LatentCoder(codec.probability_tables(), codec.config.latent_shape)
    one = coder.encode(symbols)
    if not np.array_equal(coder.decode(one), symbols):
        raise RuntimeError("latent stream did not round-trip")           # would make every number wrong
    each = coder.encode_each(symbols[:200])
    dims = codec.config.csi_dims
    rate = float(est.mean()) / dims
    distortion = err / len(x) / dims
    return {"n": int(len(x)), "nmse_db": float(10 * np.log10(ratios.mean())), "rate_estimated": rate,
            "distortion": distortion, "loss": rate + lmbda * distortion,
            "rate_coded_one_stream": one.bits / len(x) / dims,
            "rate_coded_per_report": float(np.mean([c.bits for c in each])) / dims}


def train_rd(data_dir, lmbda: float = 300.0, filters: int = 64, steps: int = 1000, batch: int = 32,
             learning_rate: float = 1e-3, seed: int = 0, log: LogFn | None = None) -> tuple[ConvCsiCodec, dict]:
    """RD training on a dataset written by ``airtune data csi`` -> (the codec, its training record: the
    dataset config and test shards, the settings, the wall time and the held-out (test split) metrics;
    the caller adds the command)."""
    import time

    from models.csi_codec.data import load_split, read_description
    from models.csi_codec.model import ConvCsiConfig

    desc = read_description(data_dir)
    num_ant, num_sc, _ = desc["shape"]
    x_train, x_test = load_split(data_dir, "train"), load_split(data_dir, "test")
    codec = ConvCsiCodec(ConvCsiConfig(num_ant=num_ant, num_sc=num_sc, filters=filters), seed=seed)
    t0 = time.perf_counter()
    RdTrainer(codec, lmbda, learning_rate).run(x_train, steps, batch, np.random.default_rng(seed), log=log)
    metrics = evaluate(codec, x_test, lmbda)
    start, stop, offset, test_shards = *desc["splits"]["test"], 0, []
    for i, sh in enumerate(desc["shards"]):
        if offset < stop and offset + sh["num_samples"] > start:
            test_shards.append({"index": i, "first": max(start - offset, 0), "num_samples": sh["num_samples"],
                                "x_sha256": sh.get("x_sha256")})
        offset += sh["num_samples"]
    return codec, {"dataset_config": desc["config"], "test_shards": test_shards, "lmbda": lmbda, "steps": steps,
                   "batch": batch, "learning_rate": learning_rate, "seed": seed,
                   "wall_s": round(time.perf_counter() - t0, 1), "test": metrics}


def reconstruct(codec: ConvCsiCodec, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """The codec's inference-mode reconstruction (rounded latents) of x [n, ant, sc, 2]."""
    x = np.asarray(x, np.float32)
    return np.concatenate([codec.decompress(codec.compress(x[i:i + batch])[0]) for i in range(0, len(x), batch)])


def main(argv: list[str] | None = None) -> int:
    """python -m models.csi_codec.train --data DIR --out CHECKPOINT.json [...]: RD training on a
    dataset written by ``airtune data csi``; the checkpoint records the command and the held-out
    (test split) metrics (``airtune train conv_csi`` adds the held-out SGCS of a scenario's dataset)."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m models.csi_codec.train", description=main.__doc__)
    p.add_argument("--data", required=True, help="dataset folder (description.json)")
    p.add_argument("--out", required=True, help="checkpoint JSON (weights go next to it as .npz)")
    p.add_argument("--lmbda", type=float, default=300.0, help="RD weight lambda of eq. 9 (per CSI dimension)")
    p.add_argument("--filters", type=int, default=64)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    codec, training = train_rd(args.data, args.lmbda, args.filters, args.steps, args.batch, args.lr, args.seed,
                               log=print_step)
    training = {"command": "python -m models.csi_codec.train " + " ".join(argv if argv is not None else sys.argv[1:]),
                **training}
    path = codec.save(args.out, training=training)
    print(summary_line(training["test"], path))
    return 0


def print_step(i: int, terms: dict) -> None:
    import sys

    print(f"step {i}: " + ", ".join(f"{k} {v:.4g}" for k, v in terms.items()), file=sys.stderr, flush=True)


def summary_line(metrics: dict, path) -> str:
    sgcs = f", SGCS {metrics['sgcs']:.3f}" if "sgcs" in metrics else ""
    return (f"test split: NMSE {metrics['nmse_db']:.2f} dB{sgcs} at {metrics['rate_estimated']:.4f} bit/dim estimated, "
            f"{metrics['rate_coded_one_stream']:.4f} coded (one stream), {metrics['rate_coded_per_report']:.4f} "
            f"(one stream per report) -> {path}")


if __name__ == "__main__":
    raise SystemExit(main())
