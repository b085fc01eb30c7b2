"""Every checkpoint a scenario names is checked whole at validation (issue 16): a corrupted BLER
predictor, CSI codec or receiver checkpoint exits 2 naming its field, before anything runs; the
bundled ones pass."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from simulator.loader import ConfigError
from tests.conftest import REPO

FF = REPO / "models" / "checkpoints" / "ff_bler_tdl_a30"
MLP = REPO / "models" / "checkpoints" / "mlp_bler_tdl_a30"


def _copy(src, tmp_path):
    """The checkpoint's two files under tmp_path (the JSON names its npz)."""
    for ext in (".json", ".npz"):
        shutil.copy(src.with_suffix(ext), tmp_path / f"{src.name}{ext}")
    return tmp_path / f"{src.name}.json"


def _rewrite_weights(ckpt, change):
    """Replace the npz with ``change(weights)`` and record its new sha256 (a consistent but wrong file)."""
    from models.npz_file import save_npz

    with np.load(ckpt.with_suffix(".npz")) as data:
        weights = change({k: data[k] for k in data.files})
    doc = json.loads(ckpt.read_text())
    doc["sha256"] = save_npz(ckpt.with_suffix(".npz"), weights)
    ckpt.write_text(json.dumps(doc))


def _replace_npz_bytes(ckpt, data: bytes):
    """The npz replaced by ``data`` and its sha256 recorded: only the contents are wrong."""
    from models.npz_file import file_sha256

    ckpt.with_suffix(".npz").write_bytes(data)
    doc = json.loads(ckpt.read_text())
    doc["sha256"] = file_sha256(ckpt.with_suffix(".npz"))
    ckpt.write_text(json.dumps(doc))


def _edit_config(ckpt, change):
    doc = json.loads(ckpt.read_text())
    change(doc["config"])
    ckpt.write_text(json.dumps(doc))


CORRUPTIONS = {
    "truncated JSON": (lambda c: c.write_text(c.read_text()[:40]), "not an airtune checkpoint"),
    "a JSON list": (lambda c: c.write_text("[1, 2]"), "not an airtune checkpoint"),
    "random bytes": (lambda c: c.write_bytes(np.random.default_rng(0).bytes(300)), "not an airtune checkpoint"),
    "missing npz": (lambda c: c.with_suffix(".npz").unlink(), "weights file ff_bler_tdl_a30.npz is missing"),
    "wrong sha256": (lambda c: c.with_suffix(".npz").write_bytes(c.with_suffix(".npz").read_bytes()[:-10]),
                     "sha256 of ff_bler_tdl_a30.npz does not match"),
    "wrong array size": (lambda c: _rewrite_weights(c, lambda w: {**w, "W0": w["W0"][:, :5]}),
                         "not a ff_bler checkpoint for its config: W0 [32, 5] (expected [32, 23])"),
    "missing array": (lambda c: _rewrite_weights(c, lambda w: {k: v for k, v in w.items() if k != "b1"}),
                      "missing b1"),
    "weights file not a zip (sha256 matches)": (lambda c: _replace_npz_bytes(c, b"PK\x03\x04 not a zip"),
                                                 "weights file ff_bler_tdl_a30.npz is not readable"),
    "NaN weight": (lambda c: _rewrite_weights(c, lambda w: {**w, "W1": np.full_like(w["W1"], np.nan)}),
                   "weights W1 are not finite numbers"),
    "feature_mean removed": (lambda c: _edit_config(c, lambda cfg: cfg.pop("feature_mean")),
                             "config feature_mean is missing or not finite"),
    "NaN feature_std": (lambda c: _edit_config(c, lambda cfg: cfg["feature_std"].__setitem__(0, float("nan"))),
                        "config feature_std is missing or not finite"),
    "short feature_mean": (lambda c: _edit_config(c, lambda cfg: cfg.__setitem__("feature_mean", [0.0] * 5)),
                           "feature_mean has 5 values, the BLER features are 12"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corrupted_bler_predictor_checkpoint_is_refused_at_validation(make_scenario, tmp_path, name):
    corrupt, words = CORRUPTIONS[name]
    ckpt = _copy(FF, tmp_path)
    make_scenario({"models.bler_predictor": {"type": "ff_bler", "checkpoint": str(ckpt)}})      # whole: accepted
    corrupt(ckpt)
    with pytest.raises(ConfigError) as exc:
        make_scenario({"models.bler_predictor": {"type": "ff_bler", "checkpoint": str(ckpt)}})
    assert any(e.startswith("models.bler_predictor.checkpoint: ") and words in e for e in exc.value.errors), \
        exc.value.errors


def test_another_models_file_is_refused(make_scenario, tmp_path):
    with pytest.raises(ConfigError) as exc:
        make_scenario({"models.bler_predictor": {"type": "ff_bler", "checkpoint": str(MLP.with_suffix(".json"))}})
    assert "not a ff_bler checkpoint for its config" in exc.value.errors[0]
    make_scenario({"models.bler_predictor": {"type": "mlp_bler", "checkpoint": str(MLP.with_suffix(".json")),
                                             "online": {"policy": "none"}}})


def test_a_csi_codec_checkpoint_with_a_changed_weights_file_is_refused(make_scenario, tmp_path):
    ckpt = _copy(REPO / "models" / "checkpoints" / "csi_conv_mimo_link_32x32", tmp_path)
    npz = ckpt.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:-100])
    with pytest.raises(ConfigError) as exc:
        make_scenario({"gnb": {"antenna_rows": 4, "antenna_cols": 8}, "carrier.num_prbs": 52,
                       "csi_rs.report": {"kind": "neural", "subband_prbs": 4},
                       "models.csi_codec": {"checkpoint": str(ckpt)}})
    assert exc.value.errors[0].startswith("models.csi_codec.checkpoint: ") and "sha256" in exc.value.errors[0]


CELL_CSI = {"gnb": {"antenna_rows": 4, "antenna_cols": 8}, "carrier.num_prbs": 52,
            "csi_rs.report": {"kind": "neural", "subband_prbs": 4}}
LAYOUT_CORRUPTIONS = {      # consistent files (sha256 matches) whose arrays do not fit their config
    "an array of another shape": (lambda w: {**w, "decoder/conv1/kernel": w["decoder/conv1/kernel"][..., :16]},
                                  None, "decoder/conv1/kernel [5, 5, 32, 16] (expected [5, 5, 32, 32])"),
    "an entropy parameter missing": (lambda w: {k: v for k, v in w.items() if k != "entropy/factor_2"}, None,
                                     "missing entropy/factor_2"),
    "an extra array": (lambda w: {**w, "decoder/conv3/kernel": w["decoder/conv2/kernel"]}, None,
                       "unexpected decoder/conv3/kernel"),
    "filters not in the config": (None, lambda cfg: cfg["config"].pop("filters"),
                                  "the config's sizes are missing or wrong (KeyError"),
}


@pytest.mark.parametrize("name", list(LAYOUT_CORRUPTIONS))
def test_a_csi_codec_checkpoint_whose_arrays_do_not_fit_its_config_is_refused(make_scenario, tmp_path, name):
    weights, config, words = LAYOUT_CORRUPTIONS[name]
    ckpt = _copy(REPO / "models" / "checkpoints" / "csi_conv_cell_32x32", tmp_path)
    make_scenario({**CELL_CSI, "models.csi_codec": {"checkpoint": str(ckpt)}})                    # whole: accepted
    if weights is not None:
        _rewrite_weights(ckpt, weights)
    if config is not None:
        _edit_config(ckpt, config)
    with pytest.raises(ConfigError) as exc:
        make_scenario({**CELL_CSI, "models.csi_codec": {"checkpoint": str(ckpt)}})
    assert exc.value.errors[0].startswith("models.csi_codec.checkpoint: ") and words in exc.value.errors[0], \
        exc.value.errors


def test_a_deeprx_checkpoint_whose_arrays_do_not_fit_its_config_is_refused(make_scenario, tmp_path):
    ckpt = _copy(REPO / "models" / "checkpoints" / "deeprx_small_20k", tmp_path)
    receiver = {"phy.receiver": "neural", "phy.backend": "link_level", "carrier.num_prbs": 4, "phy.num_dmrs_symbols": 1,
                "models.receiver": {"type": "deeprx", "checkpoint": str(ckpt)}}
    make_scenario(receiver)                                                                        # whole: accepted
    _edit_config(ckpt, lambda cfg: cfg["config"]["blocks"].pop())          # one block fewer than the file holds
    with pytest.raises(ConfigError) as exc:
        make_scenario(receiver)
    assert exc.value.errors[0].startswith("models.receiver.checkpoint: ") and \
        "not a deeprx checkpoint for its config: unexpected block4/" in exc.value.errors[0], exc.value.errors
