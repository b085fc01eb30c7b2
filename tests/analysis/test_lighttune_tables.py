"""The LightTune study's tables, computed from real (tiny) runs laid out as sweep folders."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.lighttune import prediction_table, results_markdown, run_metrics, throughput_table
from simulator.engine import Simulation

CKPT = "models/checkpoints/ff_bler_tdl_a30.json"


def _ci(values) -> tuple[float, float]:
    """Student-t 95 % interval, written out here to check the tables' numbers."""
    x = np.asarray(values, float)
    return x.mean(), stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))


def _fake_sweep(root, make_scenario, part, variants, seeds):
    """Run every (variant, seed) of a tiny scenario into root/<part>_tdl_b50/<point>/ with a sweep.json."""
    sweep = root / f"{part}_tdl_b50"
    points, summaries = [], {}
    for name, over in variants.items():
        for seed in seeds:
            sc = make_scenario({"name": name, "seed": seed, "duration_s": 0.4, **over})
            d = f"{name}-{seed}"
            summaries[(name, seed)] = Simulation(sc, sweep / d).run()
            points.append({"name": d, "dir": d, "status": "complete"})
    (sweep / "sweep.json").write_text(json.dumps({"points": points}))
    return sweep, summaries


def test_tables_from_runs(make_scenario, tmp_path):
    ff = {"type": "ff_bler", "checkpoint": CKPT, "online": {"policy": "none"}}
    variants = {
        "olla": {"models": {"bler_predictor": ff}},
        "cqi_tune_lighttune_uniform": {"models": {"bler_predictor": {**ff, "online": {"policy": "lighttune"}}},
                                       "link_adaptation.backoff": {"kind": "cqi_tune"}},
    }
    sweep, summaries = _fake_sweep(tmp_path, make_scenario, "throughput", variants, [1, 2])
    df = run_metrics(sweep)
    assert len(df) == 4 and set(df.variant) == set(variants)
    for row in df.itertuples():
        assert row.throughput_mbps == pytest.approx(summaries[(row.variant, row.seed)].throughput_mbps, rel=1e-6)
    per = pd.read_parquet(sweep / "olla-1" / "periods.parquet")
    per = per[(per.n_ack + per.n_nack) > 0]
    assert df[(df.variant == "olla") & (df.seed == 1)].pred_error.item() == pytest.approx(
        (per.bler_predicted - per.bler_observed).abs().mean())
    table = throughput_table({"tdl_b50": df})
    # the paired gain of a variant is computed against OLLA of the same seed and SNR point
    cur = df[df.variant == "cqi_tune_lighttune_uniform"].set_index("seed").throughput_mbps
    base = df[df.variant == "olla"].set_index("seed").throughput_mbps
    m, _ = _ci(100 * (cur / base - 1))
    assert table.loc[0, "gain lighttune_uniform %"].startswith(f"{m:.2f} ± ")
    assert "olla" in table.columns and table.loc[0, "channel"] == "TDL-B50, 30 Hz"


def test_prediction_table_reports_the_paired_change(tmp_path):
    df = pd.DataFrame({"variant": ["frozen"] * 2 + ["lighttune_uniform"] * 2, "snr_db": 0.0, "seed": [1, 2, 1, 2],
                       "pred_error": [0.4, 0.2, 0.2, 0.15], "updates": [0, 0, 3, 5]})
    t = prediction_table({"tdl_b50": df})
    m, h = _ci([-50.0, -25.0])
    assert t.loc[0, "change uniform vs frozen %"] == f"{m:.1f} ± {h:.1f}"
    assert t.loc[0, "frozen"].startswith("0.300 ± ") and t.loc[0, "updates / run (uniform)"] == "4.0"
    assert "| TDL-B50, 30 Hz |" not in results_markdown(tmp_path, "cmd")   # no sweep folders: no table
