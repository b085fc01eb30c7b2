"""LightTune's threshold-triggered update and the registry."""
from __future__ import annotations

import numpy as np
import pytest

from models.ff_bler.config import LightTuneConfig
from models.ff_bler.model import FEATURE_NAMES, FFBlerPredictor
from models.registry import UnknownModelError, get_model


def _predictor(rng, **online):
    return FFBlerPredictor(online=LightTuneConfig(**{"policy": "lighttune", **online}), rng=rng)


def _observed(p, *args):
    """observe, then apply the update (the simulator applies it at the next CSI-RS occasion)."""
    upd = p.observe(*args)
    if upd is not None:
        upd.apply()
    return upd


def _features(rng):
    return rng.normal(size=len(FEATURE_NAMES)).astype(np.float32)


def test_update_fires_exactly_at_delta(rng):
    p = _predictor(rng, delta=0.3)
    f = _features(rng)
    pred = float(p.predict(f, np.array([7]))[0])
    # observed BLERs at exactly delta, just under and just over (on whichever side is in range)
    sign = 1.0 if pred <= 0.5 else -1.0
    assert p.observe(f, 7, pred + sign * 0.29) is None
    w = [W.copy() for W in p.net.W]
    upd = p.observe(f, 7, pred + sign * 0.3)
    assert upd is not None and upd.trigger_value == pytest.approx(0.3)
    assert upd.model == "ff_bler" and upd.state_bytes > 0 and upd.update_bits == 0
    # modelled compute time: the update's FLOPs at ue_gflops, whole microseconds
    assert upd.compute_us == max(1, int(np.ceil(p.update_flops() / 100e9 * 1e6)))
    # the weights in force change only when the update is applied
    assert all(np.array_equal(a, b) for a, b in zip(w, p.net.W))
    upd.apply()
    assert not all(np.array_equal(a, b) for a, b in zip(w, p.net.W))


def test_repeated_updates_reach_the_observed_label():
    """Algorithm 1 on one sample: updates fire while the error is >= delta and stop once the
    prediction is within delta; the prediction then sits on the observed label."""
    reached = 0
    for trial in range(20):
        r = np.random.default_rng(trial)
        p = _predictor(r, delta=0.3, learning_rate=0.03, negatives="hard")
        f = _features(r)
        target = 1.0 if float(p.predict(f, np.array([5]))[0]) < 0.5 else 0.0
        for _ in range(50):
            if _observed(p, f, 5, target) is None:
                break
        assert abs(float(p.predict(f, np.array([5]))[0]) - target) < 0.3
        reached += float(p.predict(f, np.array([5]))[0]) == target
    assert reached >= 18


def test_frozen_model_never_updates(rng):
    p = FFBlerPredictor(online=LightTuneConfig(policy="none"), rng=rng)
    w = [W.copy() for W in p.net.W]
    assert p.observe(_features(rng), 3, 1.0) is None
    assert all(np.array_equal(a, b) for a, b in zip(w, p.net.W))


def test_registry_lists_valid_names():
    assert get_model("ff_bler") is FFBlerPredictor
    with pytest.raises(UnknownModelError, match="valid: .*ff_bler"):
        get_model("ff_blur")


def test_onehot_label_encoding_updates_and_checks_its_input_size():
    from models.ff_bler.model import FFBlerConfig

    cfg = FFBlerConfig(sizes=(23, 32, 32), label_encoding="onehot")
    reached = 0
    for trial in range(10):
        r = np.random.default_rng(trial)
        p = FFBlerPredictor(cfg, LightTuneConfig(policy="lighttune", learning_rate=0.03, negatives="hard"), rng=r)
        f = _features(r)
        target = 1.0 if float(p.predict(f, np.array([5]))[0]) < 0.5 else 0.0
        for _ in range(50):
            if _observed(p, f, 5, target) is None:
                break
        # Algorithm 1's stopping point: the prediction is within delta of the observation
        reached += abs(float(p.predict(f, np.array([5]))[0]) - target) < 0.3
    assert reached >= 8
    with pytest.raises(ValueError, match="FF input size 13 != 12 features \\+ 11 label inputs"):
        FFBlerPredictor(FFBlerConfig(label_encoding="onehot"))


CHECKPOINT = "models/checkpoints/ff_bler_tdl_a30.json"


@pytest.mark.parametrize("negatives", ["uniform", "hard"])
def test_committed_predictor_moves_towards_the_observed_label(negatives, monkeypatch):
    """The committed checkpoint ([23, 32, 32], one-hot label, layer goodness) at lr 0.003, on
    features drawn around its training distribution with a wrong prediction at the far end of
    the range: with hard negatives one update always raises the observed label's goodness
    against the wrong prediction's; with either, repeated updates (Algorithm 1, stopping once
    the error is below delta) end within delta of the observation."""
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)
    lifted, reached, n = 0, 0, 20
    for trial in range(n):
        r = np.random.default_rng(trial)
        p = FFBlerPredictor.load(CHECKPOINT, LightTuneConfig(learning_rate=0.003, negatives=negatives), r)
        f = (np.asarray(p.config.feature_mean) + np.asarray(p.config.feature_std) * r.normal(size=12)).astype(np.float32)
        cqi = int(r.integers(1, 16))
        pred = int(p.predict_class(f, np.array([cqi]))[0])
        pos = 10 if pred < 5 else 0
        g0 = p.goodness_table(f, np.array([cqi]))[0]
        assert _observed(p, f, cqi, pos / 10) is not None
        g1 = p.goodness_table(f, np.array([cqi]))[0]
        lifted += (g1[pos] - g1[pred]) > (g0[pos] - g0[pred])
        for _ in range(300):
            if _observed(p, f, cqi, pos / 10) is None:
                break
        reached += abs(float(p.predict(f, np.array([cqi]))[0]) - pos / 10) < 0.3
    assert reached == n
    assert lifted == n if negatives == "hard" else lifted >= n // 2
