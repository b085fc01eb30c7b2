"""Figures from metric frames (matplotlib, no pyplot state): each function returns a Figure;
``save_figure`` writes it as PNG and SVG."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.metrics import mean_ci

MAX_LINES = 12


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, object]:
    fig = Figure(figsize=(6.4, 3.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _label(cols: Sequence[str], key) -> str:
    key = key if isinstance(key, tuple) else (key,)
    return ", ".join(f"{c.rsplit('.', 1)[-1]}={k}" for c, k in zip(cols, key))


def lines(df: pd.DataFrame, x: str, y: str, hue: Sequence[str] = (), *, band: tuple[str, str] | None = None,
          title: str = "", xlabel: str | None = None, ylabel: str | None = None, marker: str | None = None) -> Figure:
    """One line per ``hue`` group (y against x, sorted by x), with a shaded band between the two
    ``band`` columns (e.g. ``("ci_low", "ci_high")``) where given."""
    fig, ax = _figure(title, xlabel or x, ylabel or y)
    hue = list(hue)
    groups = df.groupby(hue, observed=True, sort=True, dropna=False) if hue else [((), df)]
    for k, (key, g) in enumerate(groups):
        if k >= MAX_LINES:
            ax.text(0.99, 0.01, f"first {MAX_LINES} of {len(groups)} shown", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=8)
            break
        g = g.sort_values(x)
        xs = g[x].to_numpy(dtype=float)
        (line,) = ax.plot(xs, g[y].to_numpy(dtype=float), marker=marker, label=_label(hue, key) if hue else None)
        if band is not None:
            lo, hi = g[band[0]].to_numpy(dtype=float), g[band[1]].to_numpy(dtype=float)
            if np.isfinite(lo).any():
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    if hue:
        ax.legend(fontsize=8)
    return fig


def throughput_over_time(tput: pd.DataFrame, hue: Sequence[str] = ()) -> Figure:
    """``metrics.throughput(..., window_s=...)`` frame: Mbit/s against time. With ``hue``, the
    mean over the other groups (seeds, UEs) with its 95 % confidence band; else one line per
    point and UE."""
    hue = list(hue)
    if hue:
        ci = mean_ci(tput, "throughput_mbps", by=[*hue, "t_s"])
        return lines(ci, "t_s", "mean", hue, band=("ci_low", "ci_high"), title="Throughput over time",
                     xlabel="time (s)", ylabel="throughput (Mbit/s)")
    hue = [c for c in ("point", "ue") if c in tput.columns and tput[c].nunique() > 1]
    return lines(tput, "t_s", "throughput_mbps", hue, title="Throughput over time", xlabel="time (s)",
                 ylabel="throughput (Mbit/s)")


def bler_error_vs_snr(err: pd.DataFrame, hue: Sequence[str] = ()) -> Figure:
    """``metrics.bler_prediction_error(..., snr_bin_db=...)`` frame: mean |predicted - observed|
    against SNR, averaged over the other groups with a 95 % band."""
    ci = mean_ci(err, "mean_abs_error", by=[*hue, "snr_db"])
    return lines(ci, "snr_db", "mean", hue, band=("ci_low", "ci_high"), marker="o",
                 title="BLER prediction error vs SNR", xlabel="SNR (dB)", ylabel="mean |predicted - observed BLER|")


def rd_curves(rd: pd.DataFrame, scheme: Sequence[str] = (), rate: str = "total_bits_per_report") -> Figure:
    """``metrics.csi_rd`` frame: NMSE (dB) against rate, one curve per scheme."""
    return lines(rd, rate, "nmse_db", scheme, marker="o", title="CSI rate-distortion",
                 xlabel=rate.replace("_", " "), ylabel="NMSE (dB)")


def metric_vs_param(ci: pd.DataFrame, x: str, hue: Sequence[str] = (), ylabel: str = "") -> Figure:
    """``metrics.mean_ci`` frame with ``x`` among its groups (e.g. an update interval): the mean
    against x with its confidence band, one line per ``hue`` group."""
    return lines(ci, x, "mean", hue, band=("ci_low", "ci_high"), marker="o",
                 title=f"{(ylabel or 'metric').split(' (')[0].capitalize()} vs {x.rsplit('.', 1)[-1]}", xlabel=x,
                 ylabel=ylabel or "mean")


def save_figure(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg``; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p, format=p.suffix[1:], metadata={"Date": None} if p.suffix == ".svg" else None)
    return paths
