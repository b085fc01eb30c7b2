"""The online CSI study's metrics and tables (analysis/csi.py), on hand-made log frames with
known answers: rates per CSI dimension, the linear-domain NMSE mean, seed spreads."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.csi import (checkpoint_table, gain_table, over_seeds, point_facts, point_metrics, rd_table,
                          straddling_reports, write_figures)

DIMS = 2 * 2 * 2        # the fake checkpoints' num_ant x num_sc x 2


def _checkpoint(tmp_path, lmbda: float) -> str:
    path = tmp_path / f"ckpt_l{lmbda:g}.json"
    path.write_text(json.dumps({"config": {"config": {"num_ant": 2, "num_sc": 2}, "training": {
        "lmbda": lmbda, "wall_s": 1.0, "test": {"nmse_db": -8.0, "rate_coded_per_report": 0.5}}}}))
    return str(path)


def _scenario(ckpt: str, scheme: str, seed: int, beta: float = 1.0) -> dict:
    update = {"bins": 64, "bin_width": 0.005, "prior": "spike_slab", "beta": beta, "rate_term": True}
    return {"seed": seed, "models": {"csi_codec": {"checkpoint": ckpt, "online": {
        "scheme": scheme, "interval_m": 12.0, "update": update}}}}


@pytest.fixture
def study(tmp_path):
    """Two checkpoints x {none, full_model} x seeds 1, 2. Every point has two reports of 8 bits
    (1 bit/dim); none decodes at -10 dB (seed 1) / -12 dB (seed 2) twice; full_model at -20 and
    -10 dB (linear mean 0.055: -12.60 dB) and one 32-bit update (2 bit/dim over its 2 reports)."""
    ckpts = {lm: _checkpoint(tmp_path, lm) for lm in (3.0, 300.0)}
    scenarios, periods, updates = {}, [], []
    for lm, ck in ckpts.items():
        for scheme in ("none", "full_model"):
            for seed in (1, 2):
                p = f"{scheme}-{lm:g}-{seed}"
                scenarios[p] = _scenario(ck, scheme, seed)
                nmse = [-10.0 - 2 * (seed - 1)] * 2 if scheme == "none" else [-20.0, -10.0]
                periods += [{"point": p, "t_us": 100 * (i + 1), "report_arrival_t_us": 100 * (i + 1) + 50,
                             "csi_bits": 8, "csi_nmse_db": v} for i, v in enumerate(nmse)]
                if scheme == "full_model":
                    updates.append({"point": p, "update_bits": 32, "update_nonzero": 5, "update_weights": 100,
                                    "applied_t_us": 10})
    # a report still on the link at the end (NaN NMSE) is left out of the RD point
    periods.append({"point": "none-3-1", "t_us": 300, "report_arrival_t_us": -1, "csi_bits": 8,
                    "csi_nmse_db": np.nan})
    cat = pd.CategoricalDtype(list(scenarios))
    periods = pd.DataFrame(periods).astype({"point": cat})
    updates = pd.DataFrame(updates).astype({"point": cat})
    return point_metrics(periods, updates, point_facts(scenarios))


def test_point_metrics_known_answers(study):
    m = study.set_index("point")
    assert m.loc["none-3-1", "nmse_db"] == pytest.approx(-10.0)
    assert m.loc["none-3-1", "n_reports"] == 2
    assert m.loc["full_model-3-1", "nmse_db"] == pytest.approx(10 * np.log10(0.055))
    assert m.loc["full_model-3-1", ["csi_rate", "update_rate", "total_rate"]].tolist() == pytest.approx([1, 2, 3])
    assert m.loc["none-300-2", ["update_rate", "total_rate", "n_updates"]].tolist() == pytest.approx([0, 1, 0])
    assert m.loc["full_model-300-2", ["lmbda", "n_updates", "n_applied", "update_nonzero_mean"]].tolist() == \
        pytest.approx([300, 1, 1, 5])
    assert (m["n_straddling"] == 0).all()


def test_reports_on_the_link_when_an_update_lands_are_flagged():
    periods = pd.DataFrame({"point": ["a", "a", "a", "b"], "t_us": [0, 10, 30, 10],
                            "report_arrival_t_us": [5, 40, 35, 40]})
    updates = pd.DataFrame({"point": ["a", "a"], "applied_t_us": [20, -1]})
    # a's second report was sent at 10 and decoded at 40, after the update applied at 20; the
    # update still on the link at the end (-1) and the other point's report are not affected
    assert straddling_reports(periods, updates).tolist() == [False, True, False, False]


def test_over_seeds_gives_mean_and_half_range(study):
    agg = over_seeds(study, ["scheme", "lmbda"]).set_index(["scheme", "lmbda"])
    assert agg.loc[("none", 3.0), ["nmse_db", "nmse_db_spread", "n_seeds"]].tolist() == pytest.approx([-11, 1, 2])
    assert agg.loc[("full_model", 300.0), "total_rate_spread"] == 0


def test_tables_and_figures(study, tmp_path):
    rd = rd_table(study)
    assert rd["scheme / variant"].tolist() == ["none", "none", "full_model β=1", "full_model β=1"]
    assert rd["NMSE dB"].tolist()[:2] == ["-11.00 ± 1.00", "-11.00 ± 1.00"]
    assert rd["total bit/dim"].tolist() == ["1.000", "1.000", "3.000", "3.000"]
    gain = gain_table(study).set_index("lmbda")
    # paired per seed: (-12.60 - -10) and (-12.60 - -12), mean -1.60
    assert gain.loc[3.0, "full_model − none (dB)"] == pytest.approx(10 * np.log10(0.055) + 11, abs=0.01)
    ck = checkpoint_table(study)
    assert ck["lmbda"].tolist() == [3.0, 300.0] and ck["etoile drive NMSE dB (frozen)"].tolist() == [-11.0, -11.0]
    names = write_figures({"rd_schemes": study, "interval": study[study.scheme == "full_model"]}, tmp_path)
    assert names == ["rd_schemes.png", "interval.png"]
    assert all((tmp_path / n).stat().st_size > 1000 for n in names)
