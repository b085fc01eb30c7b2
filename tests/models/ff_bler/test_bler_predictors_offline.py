"""Offline training of both BLER predictors on a synthetic BLER law, and the feature scaling
they share."""
from __future__ import annotations

import numpy as np
import pytest

from models.base import BLER_FEATURES
from models.feature_scaling import fit_scaler, standardize
from models.ff_bler.config import LightTuneConfig

SNR, CQI, RBS = BLER_FEATURES.index("csi_rs_snr_db"), BLER_FEATURES.index("cqi"), BLER_FEATURES.index("num_rbs")


def _synthetic(rng, n=3000):
    """BLER = logistic(CQI - SNR/2 - 2) observed over 40 transport blocks; 106 RBs everywhere."""
    x = rng.normal(size=(n, len(BLER_FEATURES))).astype(np.float32)
    x[:, SNR] = rng.uniform(0, 20, n)
    x[:, CQI] = rng.integers(1, 16, n)
    x[:, RBS] = 106
    p = 1 / (1 + np.exp(-(x[:, CQI] - x[:, SNR] / 2 - 2)))
    return x, rng.binomial(40, p) / 40


def test_constant_training_features_are_ignored_at_run_time(rng):
    x, _ = _synthetic(rng, 200)
    mean, std = fit_scaler(x)
    assert std[RBS] == 0 and std[SNR] > 0
    other = x.copy()
    other[:, RBS] = 52
    np.testing.assert_array_equal(standardize(x, mean, std), standardize(other, mean, std))
    assert np.allclose(standardize(x, mean, std)[:, SNR].std(), 1, atol=1e-3)


@pytest.mark.parametrize("model", ["ff_bler", "mlp_bler"])
def test_offline_training_learns_a_bler_law(rng, model):
    x, bler = _synthetic(rng)
    if model == "ff_bler":
        from models.ff_bler.train import train_bler_predictor

        _, _, m = train_bler_predictor(x, bler, epochs=15, lr=0.003, sizes=(23, 32, 32), threshold=9.0,
                                       label_encoding="onehot", goodness="layer")
    else:
        from models.mlp_bler.train import train_mlp_bler

        _, _, m = train_mlp_bler(x, bler, epochs=30)
    assert m["holdout_mae"] < 0.6 * m["constant_mae"], m


def test_mlp_predictor_round_trips_its_checkpoint_and_is_offline(rng, tmp_path):
    from models.checkpoint import save_checkpoint
    from models.mlp_bler.model import MlpBlerConfig, MlpBlerPredictor

    p = MlpBlerPredictor(MlpBlerConfig(), rng=rng)
    path = save_checkpoint(tmp_path / "m.json", {"sizes": [12, 64, 64, 1], "feature_mean": p.config.feature_mean,
                                                 "feature_std": p.config.feature_std}, p.get_weights())
    q = MlpBlerPredictor.load(str(path), LightTuneConfig(policy="none"), rng)
    f = rng.normal(size=(5, len(BLER_FEATURES))).astype(np.float32)
    out = q.predict(f, np.arange(5) + 3)
    np.testing.assert_array_equal(out, p.predict(f, np.arange(5) + 3))
    assert out.shape == (5,) and ((out > 0) & (out < 1)).all()
    assert q.observe(f[0], 3, 1.0, 0.0) is None
    with pytest.raises(ValueError, match="offline model"):
        MlpBlerPredictor.load(str(path), LightTuneConfig(policy="lighttune"), rng)


def test_offline_model_with_online_policy_names_the_field(make_scenario):
    from simulator.loader import ConfigError

    with pytest.raises(ConfigError, match=r"models.bler_predictor.online.policy: mlp_bler is an offline model"):
        make_scenario({"models": {"bler_predictor": {"type": "mlp_bler", "online": {"policy": "lighttune"}}}})
