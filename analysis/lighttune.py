"""Tables of the LightTune mismatch study (scenarios/experiments/lighttune/) from its sweep folders.

Two sweeps per test channel (``prediction_tdl_*`` and ``throughput_tdl_*``); the variant of a
point is its scenario ``name``. Per point (``analysis.metrics``): the mean |bler_predicted -
bler_observed| over its periods and its throughput (delivered bits / duration). A seed's
figure is the mean over the SNR points; tables give the mean over seeds with a Student-t 95 %
confidence interval (``analysis.metrics.mean_ci``). Gains are paired: per seed and SNR point,
variant / OLLA - 1.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.load import load_sweep
from analysis.metrics import bler, bler_prediction_error, mean_ci, throughput, update_stats

CHANNELS = {"tdl_a30": "TDL-A30, 10 Hz", "tdl_b50": "TDL-B50, 30 Hz", "tdl_c200": "TDL-C200, 50 Hz"}
PREDICTION_VARIANTS = ["frozen", "lighttune_uniform", "lighttune_hard", "lighttune_uniform_lr0.03"]
THROUGHPUT_VARIANTS = ["olla", "cqi_tune_frozen", "cqi_tune_lighttune_uniform", "cqi_tune_lighttune_hard",
                       "cqi_tune_offline_mlp"]
TABLEONLY_VARIANTS = ["table", "table_cqi_tune_lighttune_uniform"]
MEASERROR_VARIANTS = ["table", "cqi_tune_frozen_tau0.3", "cqi_tune_lighttune_uniform_tau0.3",
                      "cqi_tune_lighttune_hard_tau0.3", "cqi_tune_offline_mlp_tau0.3",
                      "cqi_tune_lighttune_uniform_tau0.9"]
PARTS = ("prediction", "throughput", "tableonly", "measerror")
# The paper's figures (seeds/003, Sec. V-B), for the comparison column.
PAPER = {("prediction", "tdl_a30"): "-43.5 %", ("prediction", "tdl_b50"): "-36 %",
         ("throughput", "tdl_b50"): "+6 %", ("throughput", "tdl_c200"): "+9.5 %"}
KEYS = ["point", "variant", "snr_db", "seed"]
HIGH_BLER = 0.9


def run_metrics(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per complete point: variant, snr_db, seed, pred_error, throughput_mbps,
    first_tx_bler, updates, backoff_share (share of periods whose CQI was backed off) and
    high_bler_share (share of periods whose observed BLER reached ``HIGH_BLER``: the periods an
    oracle CQI-Tune at tau_BLER = 0.9 would have backed off)."""
    logs = load_sweep(sweep_dir)
    facts = pd.DataFrame([{"point": p, "variant": sc["name"], "snr_db": float(sc["snr"]["snr_db"]),
                           "seed": int(sc["seed"])} for p, sc in logs.scenarios.items()])
    if facts.empty:
        return pd.DataFrame(columns=[*KEYS, "pred_error", "throughput_mbps", "first_tx_bler", "updates",
                                     "backoff_share", "high_bler_share"])
    facts["point"] = facts["point"].astype(logs.slots["point"].dtype)
    per = logs.periods.assign(backed_off=logs.periods["cqi_reported"] < logs.periods["cqi_table"],
                              high_bler=(logs.periods["bler_observed"] >= HIGH_BLER).where(
                                  logs.periods["bler_observed"].notna()))
    out = (facts
           .merge(bler_prediction_error(per, by=["point"])[["point", "mean_abs_error"]], on="point", how="left")
           .merge(throughput(logs.slots, duration_s=logs.duration_s, by=["point"])[["point", "throughput_mbps"]],
                  on="point", how="left")
           .merge(bler(logs.slots, logs.max_transmissions, by=["point"])[["point", "first_tx_bler"]], on="point",
                  how="left")
           .merge(per.groupby("point", observed=True)[["backed_off", "high_bler"]].mean()
                  .rename(columns={"backed_off": "backoff_share", "high_bler": "high_bler_share"}).reset_index(),
                  on="point", how="left"))
    upd = (update_stats(logs.updates, by=["point"]) if len(logs.updates)
           else pd.DataFrame(columns=["point", "n_updates"]))
    upd = upd.groupby("point", observed=True)["n_updates"].sum().rename("updates").reset_index()
    out = out.merge(upd, on="point", how="left")
    out["updates"] = out["updates"].fillna(0).astype(int)
    return out.rename(columns={"mean_abs_error": "pred_error"})


def _variant_cells(df: pd.DataFrame, metric: str, variants: list[str], digits: int) -> dict[str, str]:
    """{variant: "mean ± CI half-width"}: the SNR-averaged metric per seed, then mean over seeds."""
    per_seed = df.groupby(["variant", "seed"], observed=True)[metric].mean().reset_index()
    ci = mean_ci(per_seed, metric, by=["variant"]).set_index("variant")
    return {v: _fmt(ci.loc[v, "mean"], ci.loc[v, "ci_high"] - ci.loc[v, "mean"], digits)
            for v in variants if v in ci.index}


def _fmt(m: float, h: float, digits: int) -> str:
    return f"{m:.{digits}f} ± {h:.{digits}f}"


def prediction_table(metrics: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rows: channels; columns: mean |pred - obs| per variant (mean ± 95 % CI over seeds), the
    paired relative change of LightTune (uniform) against the frozen model, and the paper's."""
    out = []
    for ch, df in metrics.items():
        row = {"channel": CHANNELS[ch], **_variant_cells(df, "pred_error", PREDICTION_VARIANTS, 3)}
        seed = df.groupby(["variant", "seed"], observed=True)["pred_error"].mean().unstack("seed")
        if {"frozen", "lighttune_uniform"} <= set(seed.index):
            rel = (100 * (seed.loc["lighttune_uniform"] / seed.loc["frozen"] - 1)).rename("change").reset_index()
            c = mean_ci(rel, "change", by=[]).iloc[0]
            row["change uniform vs frozen %"] = _fmt(c["mean"], c["ci_high"] - c["mean"], 1)
        row["paper"] = PAPER.get(("prediction", ch), "")
        row["updates / run (uniform)"] = f"{df[df.variant == 'lighttune_uniform'].updates.mean():.1f}"
        out.append(row)
    return pd.DataFrame(out)


def throughput_table(metrics: dict[str, pd.DataFrame], variants: list[str] = THROUGHPUT_VARIANTS,
                     paper: bool = True) -> pd.DataFrame:
    """Rows: channels; columns: throughput per variant (Mbit/s, mean ± CI over seeds) and the
    paired gain of each other variant over the first (OLLA alone) in %."""
    out = []
    for ch, df in metrics.items():
        row = {"channel": CHANNELS[ch], **_variant_cells(df, "throughput_mbps", variants, 2)}
        base = df[df.variant == variants[0]].set_index(["seed", "snr_db"]).throughput_mbps
        for v in variants[1:]:
            cur = df[df.variant == v].set_index(["seed", "snr_db"]).throughput_mbps
            if len(cur) and len(base):
                gain = (100 * (cur / base - 1)).groupby("seed").mean().rename("gain").reset_index()
                c = mean_ci(gain, "gain", by=[]).iloc[0]
                row[f"gain {v.removeprefix('cqi_tune_')} %"] = _fmt(c["mean"], c["ci_high"] - c["mean"], 2)
        if paper:
            row["paper"] = PAPER.get(("throughput", ch), "")
        out.append(row)
    return pd.DataFrame(out)


def by_snr(df: pd.DataFrame, metric: str, digits: int) -> pd.DataFrame:
    """[variant x snr_db] mean over seeds (the paper's Fig. 4 axis)."""
    return df.groupby(["variant", "snr_db"], observed=True)[metric].mean().unstack("snr_db").round(digits)


def _diagnostics(df: pd.DataFrame) -> pd.DataFrame:
    """Per variant, means over points: how often CQI-Tune backed off, how often the observed
    period BLER reached 0.9, prediction error, first-transmission BLER, updates per run."""
    return df.groupby("variant", observed=True)[["backoff_share", "high_bler_share", "pred_error", "first_tx_bler",
                                                  "updates"]].mean().round(3)


def markdown_table(df: pd.DataFrame, index: bool = False) -> str:
    """GitHub markdown (pandas' to_markdown needs the optional tabulate package)."""
    if index:
        df = df.reset_index()
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join("" if pd.isna(v) else str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def load_study(root: str | Path) -> dict[str, dict[str, pd.DataFrame]]:
    """{"prediction" | "throughput": {channel: run_metrics}} for the sweep folders under ``root``."""
    root = Path(root)
    out: dict[str, dict[str, pd.DataFrame]] = {part: {} for part in PARTS}
    for part in out:
        for ch in CHANNELS:
            d = root / f"{part}_{ch}"
            if (d / "sweep.json").exists():
                df = run_metrics(d)
                if len(df):
                    out[part][ch] = df
    return out


def results_markdown(root: str | Path, command: str) -> str:
    """The study's tables as a markdown document (RESULTS.md)."""
    study = load_study(root)
    parts = [f"# LightTune mismatch study: results\n\nRegenerate: `{command}` (tables only, from the logs "
             f"already there: add `--tables-only`).\n\nPHY: the abstraction backend with the calibrated BLER "
             "tables (simulator/data/bler_tables/PDSCH_table1.json). 16 s per run, CSI-RS every 80 ms "
             "(200 periods), 106 PRB at 30 kHz, seeds 1-5, SNR 0, 10, 20, 30, 40 dB. Predictors trained on "
             "TDL-A30 at 0-12 dB and 10 Hz (see docs/tutorials/lighttune.md). Scenario files: this folder.\n"]
    if study["prediction"]:
        parts += ["## BLER prediction error, mean |predicted − observed BLER| per period\n",
                  "Mean over SNR 0, 10, 20, 30, 40 dB, then mean ± 95 % CI over seeds. Test data collected "
                  "as the training data (OLLA off, CQI within ±4 of the table's). Change: paired per seed, "
                  "LightTune (uniform negatives) against the frozen model.\n",
                  markdown_table(prediction_table(study["prediction"])), ""]
        for ch, df in study["prediction"].items():
            parts += [f"### {CHANNELS[ch]}: prediction error by SNR (dB), mean over seeds\n",
                      markdown_table(by_snr(df, "pred_error", 3), index=True), ""]
    if study["throughput"]:
        parts += ["## Throughput, Mbit/s (OLLA at 10 % target; CQI-Tune tau_BLER 0.9, CQI_min = CQI_table − 1)\n",
                  "Mean over the SNR points, then mean ± 95 % CI over seeds. Gain: paired per seed and SNR "
                  "point against OLLA alone, averaged over SNR points, CI over seeds.\n",
                  markdown_table(throughput_table(study["throughput"])), ""]
        for ch, df in study["throughput"].items():
            parts += [f"### {CHANNELS[ch]}: throughput by SNR (dB), Mbit/s, mean over seeds\n",
                      markdown_table(by_snr(df, "throughput_mbps", 2), index=True), "",
                      f"{CHANNELS[ch]}, with OLLA: diagnostics by variant (backoff_share: periods CQI-Tune "
                      "backed off; high_bler_share: periods whose observed BLER reached 0.9, the ones an oracle "
                      "CQI-Tune would back off; means over points)\n",
                      markdown_table(_diagnostics(df), index=True), ""]
    if study["tableonly"]:
        parts += ["## Table-based CQI without OLLA, alone and with CQI-Tune (LightTune, uniform), Mbit/s\n",
                  markdown_table(throughput_table(study["tableonly"], TABLEONLY_VARIANTS, paper=False)), ""]
        for ch, df in study["tableonly"].items():
            parts += [f"{CHANNELS[ch]}, no OLLA: diagnostics by variant (as above)\n", markdown_table(_diagnostics(df), index=True),
                      ""]
    if study["measerror"]:
        parts += ["## No OLLA, 4 dB (std) CSI-RS measurement error: table CQI alone and with CQI-Tune, Mbit/s\n",
                  "Gains paired against `table` per seed and SNR point.\n",
                  markdown_table(throughput_table(study["measerror"], MEASERROR_VARIANTS, paper=False)), ""]
        for ch, df in study["measerror"].items():
            parts += [f"### {CHANNELS[ch]}, measurement error: throughput by SNR (dB), Mbit/s\n",
                      markdown_table(by_snr(df, "throughput_mbps", 2), index=True), "",
                      f"{CHANNELS[ch]}, measurement error: diagnostics by variant (as above)\n",
                      markdown_table(_diagnostics(df), index=True), ""]
    return "\n".join(parts)
