"""Standardisation of the BLER predictors' input features and their train/test split, shared by
every predictor type.

A feature that is constant in the training data (rank, number of RBs and DMRS symbols in
the LightTune training set) carries no information the model could have learned, so it is
stored with std 0 and enters the network as 0 whatever its value at run time. Dividing by a
tiny std instead turned a 52-RB scenario into an input of -54,000 for a model trained on
106 RBs.
"""
from __future__ import annotations

import numpy as np

CONSTANT_STD = 1e-6


def check_scaling(checkpoint, config: dict, num_features: int) -> None:
    """A BLER predictor checkpoint's feature_mean and feature_std give one value per feature (their
    finiteness is ``verify_checkpoint``'s); CheckpointError otherwise."""
    from models.checkpoint import CheckpointError

    for key in ("feature_mean", "feature_std"):
        if len(config[key]) != num_features:
            raise CheckpointError(f"{checkpoint}: config {key} has {len(config[key])} values, the BLER features "
                                  f"are {num_features}")


def fit_scaler(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """features [N, F] -> (mean [F], std [F]); std 0 marks a feature constant in training."""
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    return mean.astype(np.float32), np.where(std > CONSTANT_STD, std, 0.0).astype(np.float32)


def standardize(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """[N, F] -> [N, F] float32: (x - mean) / std, 0 where std is 0."""
    inv = np.divide(1.0, std, out=np.zeros_like(std, dtype=np.float32), where=std > 0)
    return ((np.asarray(features, np.float32) - mean) * inv).astype(np.float32)


class HoldoutSplit:
    """The train/test split and scaler both BLER predictors' trainers use, so their held-out
    errors compare: a seeded permutation, the first ``holdout`` fraction held out, the scaler
    fitted on the training part."""

    def __init__(self, features: np.ndarray, seed: int, holdout: float):
        order = np.random.default_rng(seed).permutation(len(features))
        n_test = int(round(holdout * len(features)))
        self.test, self.train = order[:n_test], order[n_test:]
        self.mean, self.std = fit_scaler(features[self.train])
        self.x = standardize(features, self.mean, self.std)           # [N, F], every sample

    def metrics(self, predict, features: np.ndarray, bler: np.ndarray) -> dict:
        """Held-out mean |predict(features) - bler| and that of the best constant (the median)."""
        if not len(self.test):
            return {"holdout_mae": float("nan"), "constant_mae": float("nan"), "n_train": len(self.train), "n_test": 0}
        err = float(np.mean(np.abs(predict(features[self.test]) - bler[self.test])))
        const = float(np.mean(np.abs(np.median(bler[self.train]) - bler[self.test])))
        return {"holdout_mae": err, "constant_mae": const, "n_train": len(self.train), "n_test": len(self.test)}
