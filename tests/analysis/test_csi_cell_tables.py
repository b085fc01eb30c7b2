"""The CSI cell study's tables (analysis.csi_cell): the per-point metrics from real tiny runs laid out as
sweep folders, recomputed by hand from the logs; the two claims' verdicts on constructed numbers whose
answer is known."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.csi_cell import claims, load_study, overview_table, results_markdown
from simulator.engine import Simulation
from tests.models.csi_codec.conftest import save_tiny_codec


def _sweep(root, name, runs):
    sweep = root / name
    points = []
    for d, sc in runs.items():
        Simulation(sc, sweep / d).run()
        points.append({"name": d, "dir": d, "status": "complete"})
    (sweep / "sweep.json").write_text(json.dumps({"points": points}))


def test_point_metrics_from_runs(make_scenario, tmp_path):
    ckpt = save_tiny_codec(tmp_path / "codec.json")
    base = {"duration_s": 0.3, "carrier.num_prbs": 8, "gnb": {"antenna_rows": 2, "antenna_cols": 4},
            "channel": {"model": "cdl", "profile": "A", "delay_spread_ns": 100}, "csi_rs.report.subband_prbs": 1,
            "ues": [{"id": u, "mobility": {"model": "linear", "speed_kmh": 120, "start_m": [10.0 * u, 0, 1.5]}}
                    for u in range(3)]}
    _sweep(tmp_path, "codebooks", {f"{k}-{s}": make_scenario({**base, "seed": s, "csi_rs.report.kind": k})
                                   for k in ("ideal", "type1") for s in (1, 2)})
    online = {"scheme": "full_model", "interval_m": 2, "samples": 16, "steps": 2, "batch": 4, "ue_gflops": 1000}
    _sweep(tmp_path, "neural", {f"full_model-{s}": make_scenario({**base, "seed": s, "csi_rs.report.kind": "neural",
                                                                  "models.csi_codec": {"checkpoint": ckpt,
                                                                                       "online": online}})
                                for s in (1, 2)})
    df = load_study(tmp_path)
    assert len(df) == 6 and set(df.variant) == {"ideal", "type1", "full_model"}
    row = df[(df.variant == "full_model") & (df.seed == 2)].iloc[0]
    periods = pd.read_parquet(tmp_path / "neural" / "full_model-2" / "periods.parquet")
    updates = pd.read_parquet(tmp_path / "neural" / "full_model-2" / "updates.parquet")
    slots = pd.read_parquet(tmp_path / "neural" / "full_model-2" / "slots.parquet")
    assert len(updates) > 0 and row.n_updates == len(updates) and row.interval_m == 2
    assert row.update_bits == pytest.approx(updates.update_bits.sum() / len(periods))
    assert row.overhead_bits == pytest.approx(periods.csi_bits.mean() + updates.update_bits.sum() / len(periods))
    assert row.sgcs == pytest.approx(periods.csi_sgcs.mean())
    per_ue = slots.groupby("ue").delivered_bits.sum() / 0.3 / 1e6
    assert row.ue_mean_mbps == pytest.approx(per_ue.sum() / 3) and row.ue_p5_mbps == pytest.approx(np.percentile(per_ue, 5))
    ideal = df[df.variant == "ideal"]
    assert (ideal.sgcs > 0.999).all() and (ideal.update_bits == 0).all() and ideal.interval_m.isna().all()
    table = overview_table(df)
    assert list(table.report) == ["ideal", "type1"]               # no neural row at 12 m
    md = results_markdown(tmp_path, "airtune experiment csi_cell", figures=tmp_path)
    assert "## Every report kind" in md and (tmp_path / "throughput_overhead.png").is_file()
    # the committed record: written with the tables, and the tables rebuild from it alone, byte for byte
    record = tmp_path / "points.csv"
    md_logs = results_markdown(tmp_path, "cmd", record=record)
    first = record.read_bytes()
    rec = pd.read_csv(record)
    assert len(rec) == 6 and (rec.wall_s > 0).all() and "git_commit" in rec.columns
    md_record = results_markdown(tmp_path / "no-logs", "cmd", record=record)
    assert md_record == md_logs and record.read_bytes() == first
    # a point whose scenario is no longer the sweep file's is stale: dropped
    current = dict(zip(zip(df.sweep, df.point), df.scenario_sha256))
    current[("neural", "full_model-2")] = "0" * 64
    assert len(load_study(tmp_path / "no-logs", record, current)) == 5


def _study(fm_overhead, fm_gain, eo_gain, seeds=(1, 2, 3, 4, 5)):
    """Constructed points: full_model and encoder_only at 6/12/24/48 m, UE throughput 10 + gain + a seed
    effect shared by every variant (paired differences cancel it) + a small per-point wiggle."""
    rows, rng = [], np.random.default_rng(0)
    for scheme, gains, overhead in (("full_model", fm_gain, fm_overhead), ("encoder_only", eo_gain, [100] * 4)):
        for interval, gain, ov in zip((6, 12, 24, 48), gains, overhead):
            for s in seeds:
                rows.append({"family": "neural", "variant": scheme, "interval_m": float(interval), "seed": s,
                             "ue_mean_mbps": 10 + gain + s + 0.01 * rng.normal(), "overhead_bits": ov + rng.normal(),
                             "sgcs": 0.5, "ue_p5_mbps": 1.0, "cell_mbps": 80.0, "csi_bits": 100.0,
                             "update_bits": ov - 100, "report_delay_ms": 5.0, "n_updates": 3})
    return pd.DataFrame(rows)


def test_claims_known_answers():
    # full_model: interior optimum at 12 m; its 48 m interval costs less than encoder_only and is 1 Mbit/s ahead
    pairs, optimum, verdicts = claims(_study([400, 300, 150, 90], [0.5, 2.0, 1.5, 1.0], [0, 0, 0, 0]))
    assert list(pairs["full_model every (m)"]) == ["48"] * 4           # only 48 m is at equal or lower overhead
    diffs = pairs["UE mean difference (Mbit/s)"].str.split(" ").str[0].astype(float)
    assert np.allclose(diffs, 1.0, atol=0.05)
    assert verdicts[0].startswith("Claim 1") and "holds for 4 of 4" in verdicts[0]
    fm = optimum.set_index("scheme").loc["full_model"]
    assert fm["best interval (m)"] == "12" and fm["interior optimum"] == "yes"
    assert optimum.set_index("scheme").loc["encoder_only", "interior optimum"] == "no"
    # full_model always costs more: no equal-overhead pair (null); monotone: the best is an end of the range
    pairs, optimum, verdicts = claims(_study([400, 300, 200, 150], [2.0, 1.5, 1.0, 0.5], [0, 0, 0, 0]))
    assert pairs.empty and "null" in verdicts[0]
    assert optimum.set_index("scheme").loc["full_model", "best interval (m)"] == "6"
    assert "an end of the range" in next(v for v in verdicts if "Claim 2" in v and "full_model" in v)


def test_a_started_sweep_without_complete_points_adds_no_row(tmp_path):
    (tmp_path / "interval").mkdir()
    _sweep(tmp_path, "interval", {})            # sweep.json written, nothing complete yet
    df = load_study(tmp_path)
    assert df.empty and "scenario_sha256" in df.columns
