"""``airtune report RUN_OR_SWEEP``: one self-contained HTML file (figures embedded as base64 PNG,
tables, the scenario and the manifest); the figures are also written as PNG and SVG next to it."""
from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

import pandas as pd
import yaml

from analysis import plots
from analysis.load import LoadError, Logs, load
from analysis.metrics import bler, bler_prediction_error, cell, csi_rd, mean_ci, throughput, update_stats


class ReportError(ValueError):
    """RUN_OR_SWEEP is not a run or sweep folder, or holds nothing to report."""


def _window_s(logs: Logs) -> float:
    longest = max(logs.duration_s.values(), default=1.0)
    return max(0.01, round(longest / 40, 3))


def _sweep_axes(logs: Logs) -> tuple[list[str], list[str]]:
    """(numeric parameters to put on an x axis, other parameters to colour by), seed excluded."""
    varied = [p for p in logs.params if p != "seed" and logs.points[p].nunique() > 1]
    numeric = [p for p in varied if pd.api.types.is_numeric_dtype(logs.points[p])
               and not pd.api.types.is_bool_dtype(logs.points[p])]
    return numeric, [p for p in varied if p not in numeric]


def _figure_or_table(caption: str, data: pd.DataFrame, x: str, make) -> tuple[str, object]:
    """(caption, Figure), or (caption, the data as a table) when its x axis has a single value: a line
    plot of one x shows a few dots and says less than the numbers."""
    if data[x].nunique(dropna=True) <= 1:
        return f"{caption} (a single {x}, so a table)", data.reset_index(drop=True)
    return caption, make()


def figures(logs: Logs) -> dict[str, tuple[str, object]]:
    """name -> (caption, Figure or, where the x axis has a single value, a DataFrame) for what the logs hold."""
    out = {}
    if logs.slots.empty:
        return out
    numeric, categorical = _sweep_axes(logs)
    tput_w = throughput(logs.slots, window_s=_window_s(logs))
    hue = categorical[:1] if logs.kind == "sweep" else []
    if logs.kind == "sweep" and not hue and numeric:
        hue = numeric[:1]
    out["throughput_over_time"] = (
        f"Delivered throughput per UE in {_window_s(logs) * 1000:g} ms windows"
        + (f"; mean over seeds, UEs and any other parameter with 95 % confidence band, by {', '.join(hue)}"
           if hue else ""),
        plots.throughput_over_time(tput_w, hue))
    if logs.periods["bler_predicted"].notna().any():
        err = bler_prediction_error(logs.periods, snr_bin_db=1.0)
        if len(err):
            out["bler_error_vs_snr"] = _figure_or_table(
                "Mean |predicted - observed BLER| per 1 dB SNR bin (95 % band over points and UEs)", err, "snr_db",
                lambda: plots.bler_error_vs_snr(err, categorical[:1]))
    if logs.periods["csi_nmse_db"].notna().any():
        rd = csi_rd(logs.periods, logs.updates, by=[*logs.params, "point"])
        out["csi_rd"] = _figure_or_table(
            "CSI rate-distortion: one point per run (CSI and model-update bits per report)", rd,
            "total_bits_per_report", lambda: plots.rd_curves(rd, categorical[:1]))
    if logs.kind == "sweep":
        per_point = throughput(logs.slots, duration_s=logs.duration_s)
        per_point = per_point.groupby([*logs.params, "point"], observed=True, as_index=False, dropna=False)["throughput_mbps"].mean()
        per_point.attrs["params"] = list(logs.params)
        for x in numeric:
            hue = [p for p in (*categorical, *numeric) if p != x]
            ci = mean_ci(per_point, "throughput_mbps", by=[x, *hue])
            out[f"throughput_vs_{x.replace('.', '_')}"] = (
                f"Throughput per UE vs {x}: mean over seeds with 95 % confidence band",
                plots.metric_vs_param(ci, x, hue, "throughput (Mbit/s)"))
    return out


def _table(df: pd.DataFrame, floatfmt: str = "{:.4g}") -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else floatfmt.format(v)
        return "" if v is None else str(v)

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def tables(logs: Logs) -> dict[str, pd.DataFrame]:
    out = {}
    pts = logs.points.drop(columns=[c for c in ("error",) if logs.points[c].isna().all()], errors="ignore")
    out["Points" if logs.kind == "sweep" else "Run"] = pts
    if logs.slots.empty:
        return out
    per = throughput(logs.slots, duration_s=logs.duration_s).merge(
        bler(logs.slots, logs.max_transmissions), on=[*logs.params, "point", "ue"])
    per.attrs["params"] = list(logs.params)
    if logs.kind == "sweep" and "seed" in logs.params:
        rows = []
        for metric in ("throughput_mbps", "first_tx_bler", "residual_bler", "mean_mcs"):
            ci = mean_ci(per, metric)
            ci.insert(0, "metric", metric)
            rows.append(ci)
        out["Mean over seeds with 95 % confidence interval (Student t)"] = pd.concat(rows, ignore_index=True)
    else:
        out["Per UE"] = per
    if "prb_groups" in logs.slots.columns and logs.slots["prb_groups"].notna().any():     # a scheduled cell
        cells = cell(logs.slots, duration_s=logs.duration_s, by=[*logs.params, "point"])
        if logs.kind == "sweep" and "seed" in logs.params:
            rows = []
            for metric in ("cell_mbps", "ue_p5_mbps", "jain"):
                ci = mean_ci(cells, metric, by=[p for p in logs.params if p != "seed"])
                ci.insert(0, "metric", metric)
                rows.append(ci)
            out["Cell: mean over seeds with 95 % confidence interval (Student t)"] = pd.concat(rows, ignore_index=True)
        else:
            out["Cell"] = cells
    if len(logs.updates):
        out["Model updates"] = update_stats(logs.updates)
    return out


def _img(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#f3f3f3}pre{background:#f7f7f7;padding:0.8em;font-size:12px;overflow:auto;
max-height:40em}figure{margin:1em 0}figcaption{font-size:13px;color:#555}
.scroll{overflow-x:auto;max-width:100%;margin:0.5em 0 1.5em}.scroll table{margin:0}
img{max-width:100%;height:auto}body{padding:0 1em}"""
# .scroll: a table wider than the page scrolls inside its box instead of being cut off


def write_report(path: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a run or sweep folder; returns its path. Figures go to
    ``<out folder>/figures/*.png|svg`` and are embedded in the HTML."""
    path = Path(path)
    try:
        logs = load(path)
    except LoadError as exc:
        raise ReportError(f"RUN_OR_SWEEP: {exc}") from None
    out = Path(out) if out else path / "report.html"
    fig_dir = out.parent / "figures"
    body = []
    title = f"airtune {logs.kind} report: {path}"
    status = logs.meta.get("status")
    n_ok = int((logs.points["status"] == "complete").sum())
    body.append(f"<h1>{html.escape(title)}</h1><p>status <b>{html.escape(str(status))}</b>; "
                f"{n_ok} of {len(logs.points)} point(s) complete; generated "
                f"{time.strftime('%Y-%m-%d %H:%M:%S %z')}</p>")
    body.append("<h2>Figures</h2>")
    figs = figures(logs)
    if not figs:
        body.append("<p>No complete run to plot.</p>")
    for name, (caption, fig) in figs.items():
        if isinstance(fig, pd.DataFrame):
            body.append(f"<h3>{html.escape(name)}</h3><p>{html.escape(caption)}</p>{_table(fig)}")
            continue
        png, _svg = plots.save_figure(fig, fig_dir / name)
        body.append(f'<figure><img src="{_img(png)}" alt="{html.escape(name)}" width="640">'
                    f"<figcaption>{html.escape(caption)} ({html.escape(name)}.png, .svg)</figcaption></figure>")
    body.append("<h2>Tables</h2>")
    for name, df in tables(logs).items():
        body.append(f"<h3>{html.escape(name)}</h3>{_table(df)}")
    body.append("<h2>Scenario</h2>")
    if logs.kind == "sweep":
        body.append("<h3>Sweep</h3><pre>" + html.escape(yaml.safe_dump(logs.meta.get("sweep", {}), sort_keys=False))
                    + "</pre>")
    first = next(iter(logs.scenarios.values()), None)
    if first is not None:
        label = "Resolved scenario" + (f" of point {next(iter(logs.scenarios))}" if logs.kind == "sweep" else "")
        body.append(f"<h3>{html.escape(label)}</h3><pre>" + html.escape(yaml.safe_dump(first, sort_keys=False))
                    + "</pre>")
    body.append("<h2>Manifest</h2><pre>" + html.escape(json.dumps(logs.meta, indent=2, default=str)) + "</pre>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                   f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")
    return out
