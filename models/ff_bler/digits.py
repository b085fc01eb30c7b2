"""LightTune's Table II check on a data set a package ships: FF with the softplus loss (eq. 4)
vs the quadratic loss (eq. 6) on scikit-learn's 8x8 digits (MNIST cannot be downloaded here).

    python -m models.ff_bler.digits --seeds 5 --epochs 30

Setup: pixels / 16, one-hot label appended (74 inputs), FF MLP [74, 256, 256], ReLU,
length-normalised hidden inputs, per-neuron threshold T = 0.5, Adam lr 0.01, batch 64,
1,400 training / 397 test samples per seed; prediction = argmax of the last layer's goodness.
"""
from __future__ import annotations

import argparse

import numpy as np

from models.ff_bler.ffnet import FFNet
from models.ff_bler.train import predict_classes, train_ff


def run(loss: str, seed: int, epochs: int = 30) -> float:
    """Test accuracy (0..1) of one FF network trained with ``loss`` on one split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    idx = np.random.default_rng(seed).permutation(len(x))
    tr, te = idx[:1400], idx[1400:]
    enc = lambda lab: np.eye(10, dtype=np.float32)[lab]  # noqa: E731
    net = FFNet((74, 256, 256), threshold=0.5, rng=np.random.default_rng(seed + 100), normalize_hidden=True)
    train_ff(net, x[tr], y[tr], 10, enc, loss=loss, epochs=epochs, batch=64, lr=0.01,
             rng=np.random.default_rng(seed + 200))
    return float((predict_classes(net, x[te], 10, enc) == y[te]).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="FF softplus vs quadratic loss on sklearn digits")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=30)
    args = p.parse_args(argv)
    print("| loss | accuracy % (mean ± 95 % CI over seeds) | per seed |\n|---|---|---|")
    for loss in ("softplus", "quadratic"):
        acc = np.array([run(loss, s, args.epochs) for s in range(args.seeds)]) * 100
        ci = 1.96 * acc.std(ddof=1) / np.sqrt(len(acc)) if len(acc) > 1 else float("nan")
        print(f"| {loss} | {acc.mean():.1f} ± {ci:.1f} | {', '.join(f'{a:.1f}' for a in acc)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
