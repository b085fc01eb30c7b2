"""Tables and figures of the online CSI fine-tuning study (scenarios/experiments/csi/, seeds/002 Sec. V).

One sweep folder per sweep file (``rd_schemes``, ``rd_beta``, ``ablation_prior``,
``ablation_bins``, ``interval``). A point's facts come from its resolved scenario (scheme,
checkpoint and its training lambda, update settings, seed); its metrics from
``analysis.metrics.csi_rd`` over the whole drive: NMSE (linear mean over the reports, in dB)
and rates in bits per CSI dimension (latent, decoder update, total; update bits are shared by
the reports of the run). Across seeds: mean and spread (half the max - min range).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.lighttune import markdown_table
from analysis.load import load_sweep
from analysis.metrics import csi_rd
from analysis.plots import _figure

SWEEPS = ("rd_schemes", "rd_beta", "ablation_prior", "ablation_bins", "interval")
SCHEMES = ["none", "encoder_only", "translation", "full_model", "genie"]
FACTS = ["point", "scheme", "lmbda", "beta", "prior", "rate_term", "bins", "bin_width", "interval_m", "seed"]
METRICS = ["nmse_db", "n_straddling", "csi_rate", "update_rate", "total_rate", "n_reports", "n_updates", "n_applied",
           "update_bits_mean", "update_nonzero_mean", "update_weights", "wall_s"]
# seeds/002 Table IV (QuaDRiGa, full_model): (rate bit/dim, NMSE dB) per number of bins N.
PAPER_BINS = {2: (0.34, -5.08), 4: (0.39, -7.33), 8: (0.38, -11.25), 16: (0.35, -14.55), 32: (0.31, -15.24),
              64: (0.28, -15.35), 128: (0.28, -15.15), 256: (0.28, -15.06)}


def _checkpoint(path: str) -> dict:
    return json.loads(Path(path).read_text())


def point_facts(scenarios: dict[str, dict]) -> pd.DataFrame:
    """One row per point from its resolved scenario: ``FACTS`` and ``csi_dims`` (the checkpoint's
    num_ant x num_sc x 2) and ``checkpoint``."""
    rows = []
    for point, sc in scenarios.items():
        codec = sc["models"]["csi_codec"]
        online, upd = codec["online"], codec["online"]["update"]
        ckpt = _checkpoint(codec["checkpoint"])
        cfg = ckpt["config"]["config"]
        rows.append({"point": point, "scheme": online["scheme"], "lmbda": float(ckpt["config"]["training"]["lmbda"]),
                     "beta": float(upd["beta"]), "prior": upd["prior"], "rate_term": bool(upd["rate_term"]),
                     "bins": int(upd["bins"]), "bin_width": float(upd["bin_width"]),
                     "interval_m": float(online["interval_m"]), "seed": int(sc["seed"]),
                     "csi_dims": int(cfg["num_ant"]) * int(cfg["num_sc"]) * 2, "checkpoint": codec["checkpoint"]})
    return pd.DataFrame(rows, columns=[*FACTS, "csi_dims", "checkpoint"])


def straddling_reports(periods: pd.DataFrame, updates: pd.DataFrame) -> pd.Series:
    """Per report row: True where an update of its point was applied while the report was on the
    link (``t_us < applied_t_us <= report_arrival_t_us``): encoded for the old model, which the gNB
    keeps for such reports (models/csi_codec/online.py, model versions)."""
    out = pd.Series(False, index=periods.index)
    if not len(updates) or not len(periods):
        return out
    pts = periods["point"].astype(str)
    for point, applied in zip(updates["point"].astype(str), updates["applied_t_us"]):
        if applied >= 0:
            out |= (pts == point) & (periods["t_us"] < applied) & (periods["report_arrival_t_us"] >= applied)
    return out


def point_metrics(periods: pd.DataFrame, updates: pd.DataFrame, facts: pd.DataFrame,
                  wall_s: pd.Series | None = None) -> pd.DataFrame:
    """``facts`` (``point_facts``) joined with per-point ``METRICS``: NMSE over every decoded
    report (``nmse_db``), the reports that straddled an update (``n_straddling``,
    ``straddling_reports``), rates in bits per CSI dimension, update counts (``n_applied``: arrived before the end)
    and the mean coded size and non-zero weights of an update."""
    dims = facts.set_index("point")["csi_dims"]
    per = periods[periods["csi_nmse_db"].notna()]
    rd = csi_rd(per, updates, by=["point"])
    rd["point"] = rd["point"].astype(str)
    rd = rd.set_index("point")
    d = dims.reindex(rd.index).astype(float)
    straddle = straddling_reports(per, updates)
    out = pd.DataFrame({"nmse_db": rd["nmse_db"],
                        "n_straddling": straddle.groupby(per["point"].astype(str)).sum().reindex(rd.index),
                        "csi_rate": rd["csi_bits_per_report"] / d,
                        "update_rate": rd["update_bits_per_report"] / d,
                        "total_rate": rd["total_bits_per_report"] / d, "n_reports": rd["n_reports"]})
    if len(updates):
        u = updates.assign(point=updates["point"].astype(str), applied=updates["applied_t_us"] >= 0)
        g = u.groupby("point")
        out = out.join(pd.DataFrame({"n_updates": g.size(), "n_applied": g["applied"].sum(),
                                     "update_bits_mean": g["update_bits"].mean(),
                                     "update_nonzero_mean": g["update_nonzero"].mean(),
                                     "update_weights": g["update_weights"].max()}))
    for c in ("n_updates", "n_applied"):
        out[c] = out[c].fillna(0).astype(int) if c in out else 0
    out["wall_s"] = wall_s.reindex(out.index).astype(float) if wall_s is not None else np.nan
    res = facts.merge(out.reset_index(), on="point", how="inner")
    return res[[*FACTS, *METRICS, "checkpoint"]]


def run_metrics(sweep_dir: str | Path) -> pd.DataFrame:
    """``point_metrics`` of every complete point of a sweep folder."""
    logs = load_sweep(sweep_dir)
    if not logs.scenarios:
        return pd.DataFrame(columns=[*FACTS, *METRICS, "checkpoint"])
    wall = logs.points.assign(point=logs.points["point"].astype(str)).set_index("point").get("wall_s")
    return point_metrics(logs.periods, logs.updates, point_facts(logs.scenarios), wall)


def over_seeds(df: pd.DataFrame, by: list[str], values: list[str] = ("nmse_db", "csi_rate",
                                                                     "update_rate", "total_rate")) -> pd.DataFrame:
    """Per ``by`` group: ``n_seeds``, and for each value its mean (``<v>``) and spread
    (``<v>_spread``, half the max - min range over seeds; 0 with one seed)."""
    g = df.groupby(by, observed=True, sort=True)
    out = g[list(values)].mean()
    for v in values:
        out[f"{v}_spread"] = (g[v].max() - g[v].min()) / 2
    out["n_seeds"] = g["seed"].nunique()
    for extra in ("update_nonzero_mean", "update_bits_mean", "n_updates", "n_applied"):
        if extra in df:
            out[extra] = g[extra].mean()
    return out.reset_index()


def _pm(m: float, s: float, digits: int) -> str:
    if pd.isna(m):
        return ""
    return f"{m:.{digits}f}" if pd.isna(s) or s == 0 else f"{m:.{digits}f} ± {s:.{digits}f}"


def _cells(agg: pd.DataFrame, lead: list[str]) -> pd.DataFrame:
    """Display table: ``lead`` columns, then NMSE and rates as "mean ± spread"."""
    out = agg[lead].copy()
    out["NMSE dB"] = [_pm(m, s, 2) for m, s in zip(agg["nmse_db"], agg["nmse_db_spread"])]
    for v, name in (("csi_rate", "latent bit/dim"), ("update_rate", "update bit/dim"), ("total_rate", "total bit/dim")):
        out[name] = [_pm(m, s, 3) for m, s in zip(agg[v], agg[f"{v}_spread"])]
    if "update_nonzero_mean" in agg:
        out["non-zero weights / update"] = agg["update_nonzero_mean"].round(0)
        out["kbit / update"] = (agg["update_bits_mean"] / 1e3).round(1)
    if "n_updates" in agg:
        out["updates"] = agg["n_updates"].round(1)
    out["seeds"] = agg["n_seeds"]
    return out


def rd_table(schemes: pd.DataFrame, beta: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fig. 7 as a table: per scheme (full_model per beta) and lambda, mean ± spread over seeds."""
    df = pd.concat([d for d in (schemes, beta) if d is not None and len(d)], ignore_index=True)
    df = df.assign(label=[s if s != "full_model" else f"full_model β={b:g}" for s, b in zip(df.scheme, df.beta)])
    order = {s: i for i, s in enumerate(SCHEMES)}
    agg = over_seeds(df, ["label", "scheme", "lmbda"])
    agg = agg.assign(_o=agg["scheme"].map(order)).sort_values(["_o", "label", "lmbda"]).drop(columns="_o")
    return _cells(agg.rename(columns={"label": "scheme / variant"}).drop(columns="scheme"), ["scheme / variant", "lmbda"])


def gain_table(schemes: pd.DataFrame) -> pd.DataFrame:
    """Per lambda, NMSE gain over ``none`` (dB, paired per seed) and total rate of every scheme."""
    piv = schemes.pivot_table(index=["lmbda", "seed"], columns="scheme", values="nmse_db", observed=True)
    rows = []
    for lm, g in piv.groupby(level="lmbda"):
        row = {"lmbda": lm}
        for s in SCHEMES[1:]:
            if s in g and "none" in g:
                row[f"{s} − none (dB)"] = round(float((g[s] - g["none"]).mean()), 2)
        rows.append(row)
    return pd.DataFrame(rows)


def _ablation_label(df: pd.DataFrame) -> pd.Series:
    return df["prior"].astype(str) + np.where(df["rate_term"], " + rate term", ", no rate term")


def failed_points(root: str | Path) -> pd.DataFrame:
    """sweep, point, error of every point of the study's sweeps whose run failed."""
    rows = []
    for name in SWEEPS:
        d = Path(root) / name
        if (d / "sweep.json").exists():
            pts = load_sweep(d).points
            for _, r in pts[pts["status"] == "failed"].iterrows():
                rows.append({"sweep": name, "point": str(r["point"]), "error": str(r["error"]).splitlines()[0]})
    return pd.DataFrame(rows, columns=["sweep", "point", "error"])


def load_study(root: str | Path) -> dict[str, pd.DataFrame]:
    """{sweep name: run_metrics} for the sweep folders under ``root`` that exist."""
    out = {}
    for name in SWEEPS:
        d = Path(root) / name
        if (d / "sweep.json").exists():
            df = run_metrics(d)
            if len(df):
                out[name] = df
    return out


# ---- figures (matplotlib, no pyplot state) ----

def rd_figure(schemes: pd.DataFrame, beta: pd.DataFrame | None = None):
    """NMSE against total rate, one curve per scheme across lambda (full_model: one per beta),
    error bars: spread over seeds."""
    df = pd.concat([d for d in (schemes, beta) if d is not None and len(d)], ignore_index=True)
    df = df.assign(label=[s if s != "full_model" else f"full_model β={b:g}" for s, b in zip(df.scheme, df.beta)])
    agg = over_seeds(df, ["label", "lmbda"])
    fig, ax = _figure("RD on the etoile drive (munich-trained codecs)", "total rate (latent + update), bit / CSI dim",
                   "NMSE (dB)")
    for label, g in agg.groupby("label", sort=True):
        g = g.sort_values("lmbda")
        style = "--" if label in ("none", "genie") else "-"
        ax.errorbar(g["total_rate"], g["nmse_db"], xerr=g["total_rate_spread"], yerr=g["nmse_db_spread"],
                    fmt="o" + style, ms=4, capsize=2, label=label)
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    return fig


def param_figure(agg: pd.DataFrame, x: str, title: str, xlabel: str, logx: bool = False):
    """Two panels against ``x``: NMSE and the rates (latent, update, total), with seed spread."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.6), dpi=100, layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    fig.suptitle(title, fontsize=11)
    g = agg.sort_values(x)
    a1.errorbar(g[x], g["nmse_db"], yerr=g["nmse_db_spread"], fmt="o-", capsize=2)
    a1.set_xlabel(xlabel)
    a1.set_ylabel("NMSE (dB)")
    for v, name in (("csi_rate", "latent"), ("update_rate", "update"), ("total_rate", "total")):
        a2.errorbar(g[x], g[v], yerr=g[f"{v}_spread"], fmt="o-", capsize=2, label=name)
    a2.set_xlabel(xlabel)
    a2.set_ylabel("bit / CSI dim")
    a2.legend(fontsize=8)
    for a in (a1, a2):
        a.grid(True, alpha=0.3)
        if logx:
            a.set_xscale("log", base=2)
    return fig


def ablation_figure(df: pd.DataFrame):
    """RD points of the prior / rate-term ablation (one marker per variant, seeds averaged)."""
    agg = over_seeds(df.assign(variant=_ablation_label(df)), ["variant"])
    fig, ax = _figure("full_model ablation: update prior and rate term", "total rate, bit / CSI dim", "NMSE (dB)")
    for _, r in agg.iterrows():
        ax.errorbar(r["total_rate"], r["nmse_db"], xerr=r["total_rate_spread"], yerr=r["nmse_db_spread"], fmt="o",
                    capsize=2, label=r["variant"])
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    return fig


def write_figures(study: dict[str, pd.DataFrame], folder: str | Path) -> list[str]:
    """PNG figures of the study into ``folder``; returns their file names."""
    folder = Path(folder)
    names = []

    def save(fig, name):
        fig.savefig(folder / name, format="png", metadata={"Software": None})
        names.append(name)

    if "rd_schemes" in study:
        save(rd_figure(study["rd_schemes"], study.get("rd_beta")), "rd_schemes.png")
    if "ablation_prior" in study:
        save(ablation_figure(study["ablation_prior"]), "ablation_prior.png")
    if "ablation_bins" in study:
        save(param_figure(over_seeds(study["ablation_bins"], ["bins"]), "bins",
                          "full_model: update quantiser levels N (N x bin width = 0.32)", "bins N", logx=True),
             "ablation_bins.png")
    if "interval" in study:
        save(param_figure(over_seeds(study["interval"], ["interval_m"]), "interval_m",
                          "full_model: update interval", "fine-tuning interval (m)"), "interval.png")
    return names


def checkpoint_table(schemes: pd.DataFrame) -> pd.DataFrame:
    """Per checkpoint: its held-out (munich test split) NMSE and rate from its JSON, and frozen
    (scheme none) on the drive."""
    rows = []
    for path, g in schemes.groupby("checkpoint", sort=False):
        t = _checkpoint(path)["config"]["training"]
        frozen = g[g["scheme"] == "none"]
        rows.append({"checkpoint": f"`{path}`", "lmbda": t["lmbda"],
                     "munich test NMSE dB": round(t["test"]["nmse_db"], 2),
                     "munich test bit/dim (coded, per report)": round(t["test"]["rate_coded_per_report"], 3),
                     "etoile drive NMSE dB (frozen)": round(frozen["nmse_db"].mean(), 2) if len(frozen) else "",
                     "etoile drive bit/dim (frozen)": round(frozen["csi_rate"].mean(), 3) if len(frozen) else "",
                     "training wall s": t.get("wall_s", "")})
    return pd.DataFrame(rows).sort_values("lmbda")


SETUP = """Setup (base.yaml): conv_csi codecs (32x32 CSI, 32 filters, 29k decoder-side weights) trained on
4000 ray-traced drops of the munich area (`scenarios/training/csi_rt_munich_area_4k_32x32.yaml`), then
run on the ray-traced etoile drive sampled every 5 cm (`csi_rt_etoile_track_fine_32x32.yaml`): 30 km/h
for 10 s (the first 83 m), a report every 5 ms (2000 reports, 240 per 10 m), fine-tuning every 12 m
(100 Adam steps, batch 32, lr 1e-3, on the 256 most recent reports), update quantiser 64 bins of 0.005,
spike-and-slab prior (alpha 1000, sigma_slab 0.05), beta 1. NMSE: linear mean over every report the gNB
decoded in the run, warm-up before the first update included (the online figure, not a held-out test);
rates: coded bits per CSI dimension (2048), the update bits of the run spread over its reports.
One seed unless the table says 2 (then mean ± half the range)."""


def results_markdown(root: str | Path, command: str, figures: str | Path | None = None,
                     findings: str | Path | None = None) -> str:
    """The study's tables (and, with ``figures``, its PNGs written there) as markdown; the text of
    ``findings`` (a markdown file: the discussion of the numbers) goes after the header."""
    study = load_study(root)
    names = write_figures(study, figures) if figures is not None else []
    parts = [f"# Online CSI fine-tuning (seeds/002, Sec. V): results\n",
             f"Regenerate: `{command}` (tables and figures only, from the logs already there: add "
             "`--tables-only`). Scenario and sweep files: this folder; logs: `results/csi/` (not committed).\n",
             SETUP + "\n"]
    if findings is not None and Path(findings).is_file():
        parts += [Path(findings).read_text().strip() + "\n"]
    if "rd_schemes" in study:
        s = study["rd_schemes"]
        parts += ["## Checkpoints: static (munich) vs shifted (etoile drive) environment\n",
                  markdown_table(checkpoint_table(s)), ""]
        parts += ["## RD comparison of the schemes (Fig. 7)\n"]
        if "rd_schemes.png" in names:
            parts += ["![RD](rd_schemes.png)\n"]
        parts += [markdown_table(rd_table(s, study.get("rd_beta"))), "",
                  "NMSE change against the frozen codec (paired per seed, dB):\n", markdown_table(gain_table(s)), ""]
    if "ablation_prior" in study:
        a = study["ablation_prior"]
        agg = over_seeds(a.assign(variant=_ablation_label(a)), ["variant"])
        parts += ["## Ablation: update prior and rate term (Fig. 8, 9)\n"]
        if "ablation_prior.png" in names:
            parts += ["![prior ablation](ablation_prior.png)\n"]
        parts += [markdown_table(_cells(agg, ["variant"])), ""]
    if "ablation_bins" in study:
        agg = over_seeds(study["ablation_bins"], ["bins", "bin_width"])
        t = _cells(agg, ["bins", "bin_width"])
        t["paper (bit/dim, dB)"] = [str(PAPER_BINS.get(int(b), "")) for b in agg["bins"]]
        parts += ["## Ablation: update quantiser levels N (Table IV)\n"]
        if "ablation_bins.png" in names:
            parts += ["![bins](ablation_bins.png)\n"]
        parts += [markdown_table(t), ""]
    if "interval" in study:
        agg = over_seeds(study["interval"], ["interval_m"])
        parts += ["## Update interval (Fig. 10)\n"]
        if "interval.png" in names:
            parts += ["![interval](interval.png)\n"]
        parts += [markdown_table(_cells(agg, ["interval_m"])), ""]
    failed = failed_points(root)
    if len(failed):
        parts += ["## Failed points\n", "Runs that raised (see the notes above); they are left out of the tables.\n",
                  markdown_table(failed), ""]
    walls = pd.concat([d[["wall_s"]].assign(sweep=k) for k, d in study.items()]) if study else None
    if walls is not None and len(walls):
        w = walls.groupby("sweep", sort=False)["wall_s"].agg(["count", "mean", "sum"]).round(1).reset_index()
        parts += ["## Run times (one worker each, 2 workers)\n", markdown_table(
            w.rename(columns={"count": "points", "mean": "wall s / point", "sum": "wall s total"})), ""]
    return "\n".join(parts)
