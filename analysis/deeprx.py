"""Tables and the figure of the DeepRx targeted fine-tuning study (scenarios/experiments/deeprx/,
seeds/000 Table 1 and Fig. 3), from the CSVs that ``python -m simulator.studies.deeprx_targeted`` writes.

Gap reduction per (seed, target, variant, optimizer): random draws are averaged first, so every
target counts once; the tables give mean +/- sample std over the targets (all seeds pooled) and, for
the gap reduction on the slot, the Student-t 95 % confidence interval of that mean.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.lighttune import markdown_table
from analysis.metrics import mean_ci

# seeds/000 Table 1 / text: relative BER-gap reduction (%) of single-target fine-tuning, l-relative + BCE
PAPER = {"influence/l_relative/bce, 200k": "65.6 +/- 13.5", "influence/l_relative/bce, 800k": "47.8 +/- 8.5",
         "random": "~14"}
ORDER = ["influence/classic/bce", "influence/theta_relative/bce", "influence/l_relative/bce",
         "influence/classic/ber", "influence/theta_relative/ber", "influence/l_relative/ber", "random",
         "gradient_ascent/l_relative/bce", "multi:influence/l_relative/bce", "multi:random"]


def per_target(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (seed, target, variant, optimizer): random draws averaged; the general-BER change
    in % of the BER before."""
    df = results.assign(general_change=100 * (results["ber_general_after"] / results["ber_general_before"] - 1),
                        improved_slot=(results["gap_slot_after"] < results["gap_slot_before"]).astype(float))
    cols = ["reduction_slot", "reduction_channel", "general_change", "improved_slot",
            "gap_slot_before", "gap_channel_before"]
    return df.groupby(["seed", "target", "variant", "optimizer"], as_index=False)[cols].mean()


def _pm(values: pd.Series, digits: int = 1) -> str:
    v = values.dropna()
    if v.empty:
        return ""
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def gap_table(results: pd.DataFrame, optimizer: str = "sgd") -> pd.DataFrame:
    """Per variant (``ORDER``): targets, gap reduction on the slot and on fresh noise (%), share of
    targets whose slot gap shrank, change of the mean BER on other held-out slots (%)."""
    pt = per_target(results)
    pt = pt[pt["optimizer"] == optimizer]
    ci = mean_ci(pt, "reduction_slot", by=["variant"], bounds=(-np.inf, 100.0)).set_index("variant")
    rows = []
    for v in [x for x in ORDER if x in set(pt["variant"])]:
        g = pt[pt["variant"] == v]
        lo, hi = ci.loc[v, "ci_low"], ci.loc[v, "ci_high"]
        rows.append({"variant": v, "targets": len(g),
                     "gap reduction, slot (%)": _pm(g["reduction_slot"]),
                     "95 % CI of the mean, slot (%)": f"[{lo:.1f}, {hi:.1f}]" if np.isfinite(lo) else "",
                     "gap reduction, fresh noise (%)": _pm(g["reduction_channel"]),
                     "slot gap shrank": f"{g['improved_slot'].mean():.0%}",
                     "BER change, other slots (%)": _pm(g["general_change"], 2)})
    return pd.DataFrame(rows)


def curve_summary(curve: pd.DataFrame, metric: str = "reduction_slot") -> pd.DataFrame:
    """Mean and std over targets of ``metric`` per (variant, optimizer, step), draws averaged first."""
    pt = curve.groupby(["seed", "target", "variant", "optimizer", "step"], as_index=False)[metric].mean()
    return (pt.groupby(["variant", "optimizer", "step"])[metric].agg(["mean", "std", "count"]).reset_index())


def gap_figure(curve: pd.DataFrame):
    """Relative gap reduction vs fine-tuning steps, influence (l-relative, BCE) vs random: one panel
    per optimizer; solid: the target slot (mean ± std over targets), dotted: fresh noise draws."""
    from matplotlib.figure import Figure

    opts = [o for o in ("sgd", "adam") if o in set(curve["optimizer"])]
    fig = Figure(figsize=(6.4 * len(opts) / 1.4, 3.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(opts), squeeze=False)[0]
    colors = {"influence/l_relative/bce": "tab:blue", "random": "tab:orange"}
    slot, fresh = curve_summary(curve, "reduction_slot"), curve_summary(curve, "reduction_channel")
    for ax, opt in zip(axes, opts):
        for v, c in colors.items():
            g = slot[(slot["variant"] == v) & (slot["optimizer"] == opt)]
            if g.empty:
                continue
            ax.plot(g["step"], g["mean"], "-", color=c, lw=1.8, label=f"{v} (slot)")
            ax.fill_between(g["step"], g["mean"] - g["std"], g["mean"] + g["std"], color=c, alpha=0.12)
            f = fresh[(fresh["variant"] == v) & (fresh["optimizer"] == opt)]
            ax.plot(f["step"], f["mean"], ":", color=c, lw=1.5, label=f"{v} (fresh noise)")
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{'plain gradient descent' if opt == 'sgd' else 'Adam'}", fontsize=10)
        ax.set_xlabel("fine-tuning steps")
        ax.set_ylabel("relative BER-gap reduction (%)")
        ax.legend(fontsize=7, loc="best")
    return fig


def results_markdown(folder: str | Path, command: str, figure: str | None = None) -> str:
    """RESULTS.md of the study in ``folder`` (results.csv, curve.csv, targets.csv, settings.json;
    FINDINGS.md, if there, is inlined after the setup)."""
    folder = Path(folder)
    results = pd.read_csv(folder / "results.csv")
    targets = pd.read_csv(folder / "targets.csv")
    settings = json.loads((folder / "settings.json").read_text())
    cmd = settings.get("command") or command
    parts = ["# DeepRx targeted fine-tuning via influence functions (seeds/000): results\n",
             f"Regenerate: `{cmd}` (tables and figure only, from the CSVs here: add `--tables-only`). "
             "Code: `simulator/studies/deeprx_targeted.py` (study), `models/deeprx/targeted.py` (method), "
             "`analysis/deeprx.py` (tables, figure).\n",
             "## Setup\n",
             f"Checkpoint `{settings['checkpoint']}`"
             + (f" (weights sha256 {settings['checkpoint_sha256'][:12]}..., held-out BER "
                f"{settings['checkpoint_holdout_ber']:.3f})" if settings.get("checkpoint_sha256") else "")
             + (f" [{settings['checkpoint_note']}]" if settings.get("checkpoint_note") else "")
             + f" (dataset `{settings['data']}`: {settings['num_train']} training / "
             f"{settings['num_holdout']} held-out slots). Seeds {settings['seeds']}: each takes {settings['eval_slots']} "
             f"held-out slots (disjoint), picks its {settings['num_targets']} largest relative BER gaps to genie LMMSE "
             f"(eq. 9, BER_genie >= {settings['min_genie_ber']}), draws a Hessian subset of "
             f"{settings['hessian_subset']} training slots and starts Arnoldi from its own vector "
             f"(k = {settings['influence']['top_k']}, {2 * settings['influence']['top_k']} HVPs, non-positive "
             f"eigenvalues {settings['influence']['nonpositive']}). Pool: {settings['pool_size']} training slots. "
             f"Fine-tuning: {settings['steps']} full-batch steps on the top {settings['num_samples']} (lr "
             f"{settings['learning_rate']}), plain gradient descent (sgd) unless the row says adam; random: "
             f"{settings['random_draws']} draws per target, averaged. BER after fine-tuning: on the target slot itself "
             f"(its stored noise) and on {settings['noise_draws']} fresh noise draws of its channel, payload and SNR "
             f"(before/after on the same draws); side effect: mean BER of {settings['general_slots']} other held-out "
             f"slots. Gap reduction = 1 - gap_after / gap_before; mean ± std over targets. "
             f"Wall time {settings.get('wall_s', '?')} s on the machine that ran it.\n"]
    findings = folder / "FINDINGS.md"
    if findings.is_file():
        parts += [findings.read_text().strip() + "\n"]
    parts += ["## Relative BER-gap reduction, plain gradient descent (Table 1)\n",
              markdown_table(gap_table(results, "sgd")), "",
              "Paper (seeds/000, single target, l-relative + BCE, first-order): "
              + "; ".join(f"{k}: {v} %" for k, v in PAPER.items()) + "; gradient ascent on harmful samples harms.\n",
              "## Same, Adam (fresh moments) instead of plain gradient descent\n",
              markdown_table(gap_table(results, "adam")), ""]
    if figure:
        parts += ["## Gap over fine-tuning steps (Fig. 3a)\n", f"![gap vs steps]({figure})\n"]
    curve_path = folder / "curve.csv"
    if curve_path.is_file():
        s = curve_summary(pd.read_csv(curve_path))
        wide = s[s["step"].isin([0, 1, 3, 5, 10, 15, 20])].assign(
            cell=lambda d: [f"{m:.1f} ± {v:.1f}" for m, v in zip(d["mean"], d["std"])])
        wide = wide.pivot(index=["variant", "optimizer"], columns="step", values="cell").reset_index()
        wide.columns = [str(c) if not isinstance(c, (int, np.integer)) else f"step {c}" for c in wide.columns]
        parts += ["Gap reduction on the slot (%) after n steps:\n", markdown_table(wide), ""]
    cols = ["seed", "target", "snr_db", "mcs", "channel", "ber_rx_slot", "ber_genie_slot", "ber_rx_channel",
            "ber_genie_channel"]
    t = targets[cols].copy()
    for c in cols[5:]:
        t[c] = t[c].map(lambda x: f"{x:.4f}")
    parts += ["## Targets\n", markdown_table(t), "",
              f"Mean BER of the evaluation slots: DeepRx {targets['eval_mean_ber_rx'].mean():.4f}, genie LMMSE "
              f"{targets['eval_mean_ber_genie'].mean():.4f}.\n"]
    return "\n".join(parts)


def write_results(folder: str | Path, command: str) -> Path:
    """Write gap_vs_steps.png (if curve.csv is there) and RESULTS.md into ``folder``."""
    folder = Path(folder)
    fig_name = None
    if (folder / "curve.csv").is_file():
        fig = gap_figure(pd.read_csv(folder / "curve.csv"))
        fig_name = "gap_vs_steps.png"
        fig.savefig(folder / fig_name, format="png")
    path = folder / "RESULTS.md"
    path.write_text(results_markdown(folder, command, fig_name))
    return path
