"""Tables and figures of the CSI study in the cell (scenarios/experiments/csi_cell/): codebooks against the
neural codec and its online schemes, by SGCS and UE throughput against the total feedback overhead.

Three sweep folders: ``codebooks`` (ideal, Type I, eType II), ``neural`` (the codec frozen or fine-tuned
every 12 m by each scheme) and ``interval`` (encoder_only and full_model every 6, 24, 48 m; their 12 m
points are ``neural``'s). Per point (``point_metrics``): the reports' mean SGCS
(``periods.csi_sgcs``), the mean and 5th-percentile UE throughput and the cell throughput
(``analysis.metrics.cell`` over the run), the CSI bits per report, the update bits per report (the run's
``updates.update_bits`` over its reports) and their sum, the total feedback overhead per report; the
mean report delay (CSI-RS to arrival at the gNB). Across seeds: mean and 95 % t-interval.

seeds/002's two claims, in throughput terms (``claims``), paired by seed (a seed fixes the drives and
channels of every variant):
1. full_model ahead of encoder_only at equal total overhead: over every pair of intervals where full_model's
   mean overhead per report is at most encoder_only's, the mean UE throughput difference and its 95 %
   interval; the claim holds where an interval excludes zero on the positive side.
2. an interior optimum of the update interval: the interval of the best mean UE throughput, and its
   difference to the shortest and the longest interval; an interior optimum needs both to be positive
   beyond their 95 % intervals.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.lighttune import markdown_table
from analysis.load import load_sweep
from analysis.metrics import cell
from analysis.plots import _figure
from analysis.point_record import merge_record, read_record, write_record
from simulator.log_schema import scenario_digest

SWEEPS = ("codebooks", "neural", "interval")
CODEBOOKS = ["ideal", "type1", "etype2_pc1", "etype2_pc4", "etype2_pc8"]
SCHEMES = ["none", "encoder_only", "full_model", "genie", "translation"]
VALUES = ["sgcs", "ue_mean_mbps", "ue_p5_mbps", "cell_mbps", "csi_bits", "update_bits", "overhead_bits",
          "report_delay_ms", "n_updates"]


def point_metrics(root: str | Path, sweep: str) -> pd.DataFrame:
    """One row per complete point of ``root/sweep``: sweep, point, scenario_sha256 (analysis.point_record),
    family (codebook / neural), variant (the codebook or scheme), interval_m (neural; NaN otherwise), seed
    and ``VALUES``."""
    logs = load_sweep(Path(root) / sweep)
    if not logs.scenarios or logs.slots.empty:      # a sweep started but with no complete point yet
        return pd.DataFrame(columns=COLUMNS)
    cells = cell(logs.slots, duration_s=logs.duration_s, by=["point"]).set_index("point")
    meta = logs.points.assign(point=logs.points["point"].astype(str)).set_index("point")
    rows = []
    for point, sc in logs.scenarios.items():
        periods = logs.periods[logs.periods["point"] == point]
        updates = logs.updates[logs.updates["point"] == point]
        codec = (sc.get("models") or {}).get("csi_codec")
        neural = sc["csi_rs"]["report"]["kind"] == "neural"
        n_reports = max(len(periods), 1)
        update_bits = float(updates["update_bits"].clip(lower=0).sum()) / n_reports if len(updates) else 0.0
        csi_bits = float(periods["csi_bits"].mean())
        c = cells.loc[point]
        rows.append({"sweep": sweep, "point": str(point), "scenario_sha256": scenario_digest(sc),
                     "family": "neural" if neural else "codebook",
                     "variant": codec["online"]["scheme"] if neural else _codebook_name(sc),
                     "interval_m": float(codec["online"]["interval_m"]) if neural else math.nan,
                     "seed": int(sc["seed"]), "sgcs": float(periods["csi_sgcs"].mean()),
                     "ue_mean_mbps": float(c["cell_mbps"]) / int(c["num_ues"]), "ue_p5_mbps": float(c["ue_p5_mbps"]),
                     "cell_mbps": float(c["cell_mbps"]), "csi_bits": csi_bits, "update_bits": update_bits,
                     "overhead_bits": csi_bits + update_bits,
                     "report_delay_ms": float((periods["report_arrival_t_us"] - periods["t_us"]).mean()) / 1e3,
                     "n_updates": len(updates),                          # fine-tunings (sent or not)
                     "wall_s": meta.loc[str(point), "wall_s"], "git_commit": meta.loc[str(point), "git_commit"]})
    return pd.DataFrame(rows)


def _codebook_name(sc: dict) -> str:
    rep = sc["csi_rs"]["report"]
    return f"etype2_pc{rep['param_combination']}" if rep["kind"] == "etype2" else rep["kind"]


COLUMNS = ["sweep", "point", "scenario_sha256", "family", "variant", "interval_m", "seed", *VALUES, "wall_s",
           "git_commit"]   # the run's wall time and the code it ran (manifest.json), for the record


def load_study(root: str | Path, record: str | Path | None = None,
               current: dict[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """Every complete point of the sweeps found under ``root`` (missing sweeps are skipped), plus, with
    ``record`` (a committed ``points.csv``), the record's points the logs lack; ``current`` drops stale
    rows (analysis.point_record.merge_record)."""
    parts = [point_metrics(root, s) for s in SWEEPS if (Path(root) / s / "sweep.json").is_file()]
    fresh = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    old = read_record(record) if record is not None else pd.DataFrame(columns=COLUMNS)
    return merge_record(old, fresh, current).reindex(columns=COLUMNS)


def ci95(x) -> tuple[float, float]:
    """(mean, half-width of the 95 % t-interval); the half-width is NaN below two values."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) < 2:
        return float(x.mean()), math.nan
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def _fmt(x, digits: int) -> str:
    m, h = ci95(x)
    if math.isnan(m):
        return "—"
    return f"{m:.{digits}f}" if math.isnan(h) else f"{m:.{digits}f} ± {h:.{digits}f}"


def overview_table(df: pd.DataFrame) -> pd.DataFrame:
    """The codebooks and the neural schemes at 12 m: one row each, mean ± 95 % over seeds."""
    rows = []
    order = [("codebook", v) for v in CODEBOOKS] + [("neural", s) for s in SCHEMES]
    for family, variant in order:
        g = df[(df.family == family) & (df.variant == variant)]
        if family == "neural":
            g = g[g.interval_m == 12]
        if g.empty:
            continue
        rows.append({"report": variant if family == "codebook" else f"neural, {variant}", "seeds": len(g),
                     "SGCS": _fmt(g.sgcs, 3), "UE mean (Mbit/s)": _fmt(g.ue_mean_mbps, 2),
                     "UE 5th pct (Mbit/s)": _fmt(g.ue_p5_mbps, 2), "cell (Mbit/s)": _fmt(g.cell_mbps, 1),
                     "CSI bits / report": _fmt(g.csi_bits, 0), "update bits / report": _fmt(g.update_bits, 0),
                     "total overhead (bits / report)": _fmt(g.overhead_bits, 0),
                     "report delay (ms)": _fmt(g.report_delay_ms, 1)})
    return pd.DataFrame(rows)


def interval_table(df: pd.DataFrame) -> pd.DataFrame:
    """encoder_only and full_model by fine-tuning interval."""
    rows = []
    for scheme in ("encoder_only", "full_model"):
        for interval, g in df[(df.family == "neural") & (df.variant == scheme)].groupby("interval_m"):
            rows.append({"scheme": scheme, "every (m)": f"{interval:g}", "seeds": len(g),
                         "fine-tunings": _fmt(g.n_updates, 0),
                         "SGCS": _fmt(g.sgcs, 3), "UE mean (Mbit/s)": _fmt(g.ue_mean_mbps, 2),
                         "UE 5th pct (Mbit/s)": _fmt(g.ue_p5_mbps, 2),
                         "total overhead (bits / report)": _fmt(g.overhead_bits, 0),
                         "report delay (ms)": _fmt(g.report_delay_ms, 1)})
    return pd.DataFrame(rows)


def _paired(a: pd.DataFrame, b: pd.DataFrame, value: str = "ue_mean_mbps") -> tuple[float, float, int]:
    """Mean and 95 % half-width of a - b over the seeds both have."""
    joined = a.set_index("seed")[value].to_frame("a").join(b.set_index("seed")[value].to_frame("b"), how="inner")
    m, h = ci95(joined["a"] - joined["b"])
    return m, h, len(joined)


def claims(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(equal-overhead pairs, interval optimum per scheme, verdict lines): module docstring."""
    neural = df[df.family == "neural"]
    fm, eo = neural[neural.variant == "full_model"], neural[neural.variant == "encoder_only"]
    pairs, verdicts = [], []
    for i_fm, g_fm in fm.groupby("interval_m"):
        for i_eo, g_eo in eo.groupby("interval_m"):
            if g_fm.overhead_bits.mean() > g_eo.overhead_bits.mean():
                continue
            m, h, n = _paired(g_fm, g_eo)
            pairs.append({"full_model every (m)": f"{i_fm:g}", "encoder_only every (m)": f"{i_eo:g}",
                          "overhead full_model / encoder_only (bits)": f"{g_fm.overhead_bits.mean():.0f} / "
                                                                       f"{g_eo.overhead_bits.mean():.0f}",
                          "UE mean difference (Mbit/s)": f"{m:+.2f} ± {h:.2f}", "seeds": n, "_m": m, "_h": h})
    pairs = pd.DataFrame(pairs)
    if fm.empty or eo.empty:
        verdicts.append("Claim 1 (full_model ahead of encoder_only at equal total overhead): not measured.")
    elif pairs.empty:
        verdicts.append("Claim 1 (full_model ahead of encoder_only at equal total overhead): no full_model interval "
                        "costs as little as any encoder_only one (its update bits always add to the same report "
                        "bits), so there is no equal-overhead comparison: null.")
    else:
        ahead = pairs[pairs._m - pairs._h > 0]
        verdicts.append("Claim 1 (full_model ahead of encoder_only at equal total overhead): "
                        + (f"holds for {len(ahead)} of {len(pairs)} equal-or-lower-overhead pairs." if len(ahead) else
                           f"not shown: no pair of {len(pairs)} at equal or lower overhead has a positive 95 % interval."))
    optimum = []
    for scheme, g in ((s, neural[neural.variant == s]) for s in ("encoder_only", "full_model")):
        intervals = sorted(g.interval_m.unique())
        if len(intervals) < 3:
            verdicts.append(f"Claim 2 (interior optimum of the update interval), {scheme}: not measured "
                            f"({len(intervals)} interval{'s' if len(intervals) != 1 else ''}; three are needed).")
            continue
        means = g.groupby("interval_m").ue_mean_mbps.mean()
        best = float(means.idxmax())
        row = {"scheme": scheme, "best interval (m)": f"{best:g}"}
        ok = best not in (intervals[0], intervals[-1])
        for end, label in ((intervals[0], "shortest"), (intervals[-1], "longest")):
            m, h, _ = _paired(g[g.interval_m == best], g[g.interval_m == end])
            row[f"best - {label} ({end:g} m), Mbit/s"] = f"{m:+.2f} ± {h:.2f}" if end != best else "—"
            ok = ok and m - h > 0
        row["interior optimum"] = "yes" if ok else "no"
        optimum.append(row)
        verdicts.append(f"Claim 2 (interior optimum of the update interval), {scheme}: "
                        + ("yes, at " + f"{best:g} m." if ok else
                           f"no: the best mean is at {best:g} m" + (" (an end of the range)." if best in
                                                                    (intervals[0], intervals[-1]) else
                                                                    ", but not beyond both ends' 95 % intervals.")))
    return pairs.drop(columns=["_m", "_h"], errors="ignore"), pd.DataFrame(optimum), verdicts


def overhead_figure(df: pd.DataFrame, value: str, ylabel: str):
    """``value`` (mean over seeds with its 95 % interval) against the total overhead per report."""
    fig, ax = _figure(f"{ylabel} against total feedback overhead", "total overhead per report (bits, log)", ylabel)
    for (family, variant), g in df.groupby(["family", "variant"], sort=False):
        by = g.groupby("interval_m", dropna=False) if family == "neural" else [(math.nan, g)]
        pts = [(ci95(x.overhead_bits)[0], *ci95(x[value])) for _, x in by]
        xs, ys, hs = (np.array(v) for v in zip(*pts))
        ax.errorbar(xs, ys, yerr=np.nan_to_num(hs), marker="o" if family == "codebook" else "s", capsize=3,
                    linestyle="-" if family == "neural" and len(xs) > 1 else "none",
                    label=variant if family == "codebook" else f"neural {variant}")
    ax.set_xscale("log")
    ax.legend(fontsize=7, ncol=2)
    return fig


def interval_figure(df: pd.DataFrame):
    fig, ax = _figure("Mean UE throughput by fine-tuning interval", "fine-tuning interval (m)", "UE mean (Mbit/s)")
    for scheme in ("encoder_only", "full_model"):
        g = df[(df.family == "neural") & (df.variant == scheme)]
        if g.empty:
            continue
        pts = sorted((k, *ci95(x.ue_mean_mbps)) for k, x in g.groupby("interval_m"))
        xs, ys, hs = (np.array(v) for v in zip(*pts))
        ax.errorbar(xs, ys, yerr=np.nan_to_num(hs), marker="o", capsize=3, label=scheme)
    ax.set_xscale("log")
    ax.legend(fontsize=8)
    return fig


def results_markdown(root: str | Path, command: str, figures: str | Path | None = None,
                     findings: str | Path | None = None, record: str | Path | None = None,
                     current: dict[tuple[str, str], str] | None = None) -> str:
    """The study's tables (and, with ``figures``, its PNGs written there) as markdown; ``findings`` (a
    markdown file: the discussion of the numbers) goes after the header. With ``record``, the tables
    cover the logs' points and the record's (``load_study``), and the record is rewritten with them."""
    df = load_study(root, record, current)
    if record is not None:
        write_record(df, record)
    names = []
    if figures is not None and not df.empty:
        figures = Path(figures)
        for fig, name in ((overhead_figure(df, "ue_mean_mbps", "UE mean (Mbit/s)"), "throughput_overhead.png"),
                          (overhead_figure(df, "sgcs", "SGCS"), "sgcs_overhead.png"),
                          (interval_figure(df), "interval.png")):
            fig.savefig(figures / name, format="png", metadata={"Software": None})
            names.append(name)
    parts = ["# The CSI study in the cell: codebooks, the neural codec's online schemes, throughput against "
             "total overhead\n",
             f"Regenerate: `{command}` (tables and figures only, from the logs there and `points.csv`: add `--tables-only`). "
             "Scenario and sweep files: this folder; logs: `results/csi_cell/` (not committed); "
             "per-point metrics: `points.csv` (committed: the tables rebuild from it without the logs). "
             "Means over seeds with 95 % t-intervals; total overhead per report = CSI bits + the run's decoder "
             "update bits / its reports.\n"]
    if findings is not None and Path(findings).is_file():
        parts.append(Path(findings).read_text().strip() + "\n")
    if df.empty:
        return "\n".join(parts + ["No complete point yet.\n"])
    parts += ["## Every report kind (neural schemes fine-tuning every 12 m)\n", markdown_table(overview_table(df)), ""]
    alt = {"throughput_overhead.png": "UE throughput against overhead", "sgcs_overhead.png": "SGCS against overhead"}
    parts += [f"![{alt[n]}]({n})\n" for n in names if n in alt]
    table = interval_table(df)
    if not table.empty:
        parts += ["## Fine-tuning interval\n", markdown_table(table), ""]
        if "interval.png" in names:
            parts.append("![interval](interval.png)\n")
    pairs, optimum, verdicts = claims(df)
    parts += ["## seeds/002's claims in throughput terms\n"]
    if not pairs.empty:
        parts += ["full_model against encoder_only where full_model's total overhead is at most encoder_only's "
                  "(paired by seed):\n", markdown_table(pairs), ""]
    if not optimum.empty:
        parts += [markdown_table(optimum), ""]
    parts += ["\n".join(f"- {v}" for v in verdicts), ""]
    return "\n".join(parts)
