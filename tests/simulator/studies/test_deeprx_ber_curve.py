"""BER-vs-SNR curves (``python -m simulator.studies.deeprx_ber_curve``) on a tiny untrained DeepRx."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.deeprx.model import DeepRx, DeepRxConfig, hard_ber, loss_mask
from simulator.datagen.deeprx import DeepRxDataConfig, draw_samples, reference_llrs
from simulator.studies.deeprx_ber_curve import ber_curve, main
from tests.models.deeprx.conftest import TINY_DATA

# 16-QAM (TINY_DATA's MCS 12) needs 4 LLRs per RE
TINY_RX = dict(num_rx_ant=1, max_bits_per_symbol=4, input_filters=3, blocks=((3, 1, 1),))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    data_cfg = DeepRxDataConfig(**TINY_DATA)
    path = tmp_path_factory.mktemp("ber_curve") / "rx.json"
    DeepRx(DeepRxConfig(**TINY_RX), seed=1).save(path, training={"data_config": data_cfg.model_dump(mode="json")})
    return path


def test_cli_writes_curves_and_plot(checkpoint, tmp_path, capsys):
    csv, png = tmp_path / "c" / "ber.csv", tmp_path / "c" / "ber.png"
    assert main(["--checkpoint", str(checkpoint), "--out", str(csv), "--png", str(png),
                 "--snr-db", "-5", "30", "--samples", "3"]) == 0
    assert "genie_lmmse" in capsys.readouterr().out
    df = pd.read_csv(csv)
    assert png.stat().st_size > 0
    assert set(df["receiver"]) == {"deeprx", "lmmse", "genie_lmmse"} and set(df["mcs"]) == {-1, 12}
    pooled = df[df["mcs"] == -1].set_index(["snr_db", "receiver"])["ber"]
    assert (df["num_samples"] == 3).all() and (df["num_bits"] == df["num_bits"].iloc[0]).all()
    assert pooled[(30.0, "genie_lmmse")] < 0.01 < pooled[(-5.0, "genie_lmmse")]
    assert pooled[(30.0, "lmmse")] < pooled[(-5.0, "lmmse")]
    assert 0.3 < pooled[(30.0, "deeprx")] < 0.7                          # untrained


def test_curves_are_the_chain_receivers_ber_on_held_out_slots(checkpoint):
    """Known answer: the LS+LMMSE point equals hard_ber of reference_llrs on the same samples
    (one MCS, equal bits per sample, so the bit-weighted and per-sample means agree)."""
    model = DeepRx.load(checkpoint)
    cfg = DeepRxDataConfig(**TINY_DATA)
    df = ber_curve(model, cfg, [8.0], num_samples=2, first_index=50)
    arr = draw_samples(cfg.model_copy(update={"snr_db": (8.0, 8.0)}), [50, 51])
    mask = loss_mask(np.broadcast_to(arr["data_re"], (2, *arr["data_re"].shape)), arr["bits_per_symbol"], 4)
    expected = float(np.mean(hard_ber(reference_llrs(cfg, arr, "lmmse"), arr["bits"].astype(np.float32), mask)))
    got = df[(df["mcs"] == -1) & (df["receiver"] == "lmmse")]["ber"].item()
    assert got == pytest.approx(expected, abs=1e-6)      # float32 in hard_ber


def test_checkpoint_without_data_config_needs_one(tmp_path, capsys):
    path = DeepRx(DeepRxConfig(**TINY_RX)).save(tmp_path / "bare.json")
    assert main(["--checkpoint", str(path), "--out", str(tmp_path / "x.csv")]) == 2
    assert "--data-config" in capsys.readouterr().err
