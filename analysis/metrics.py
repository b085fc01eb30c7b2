"""Metrics: DataFrame in, DataFrame out; no file I/O and no plotting.

Every metric groups by ``by``; the default is the swept parameters (``df.attrs["params"]``, set
by the loaders), ``point`` and ``ue`` where present, so a sweep's metrics keep their parameter
columns. ``mean_ci`` then averages over seeds with a Student-t 95 % interval.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats


def keys(df: pd.DataFrame, by: Sequence[str] | None = None, extra: Sequence[str] = ()) -> list[str]:
    """Grouping columns: ``by`` if given, else the swept parameters, ``point``, ``ue`` (those present)."""
    if by is not None:
        cols = list(by)
    else:
        cols = [c for c in (*df.attrs.get("params", ()), "point", "ue") if c in df.columns]
    cols += [c for c in extra if c not in cols]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"grouping columns {missing} not in the DataFrame (columns: {list(df.columns)})")
    return cols


def _need(df: pd.DataFrame, *cols: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"needs columns {missing} (see simulator/log_schema.py)")


def _finish(out: pd.DataFrame, src: pd.DataFrame) -> pd.DataFrame:
    out = out.reset_index().drop(columns="_all", errors="ignore")
    out.attrs["params"] = [p for p in src.attrs.get("params", ()) if p in out.columns]
    return out


def _groups(df: pd.DataFrame, cols: list[str]):
    return df.groupby(cols, observed=True, sort=True, dropna=False) if cols else df.assign(_all=0).groupby("_all")


def _per_point(value, df: pd.DataFrame, name: str) -> np.ndarray | None:
    """A scalar or a point -> value mapping as one value per row (None: not given)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        _need(df, "point")
        mapped = df["point"].astype(object).map(value)
        if mapped.isna().any():
            raise KeyError(f"{name}: no value for point(s) {sorted(set(df['point'][mapped.isna()].astype(str)))}")
        return mapped.to_numpy(dtype=float)
    return np.full(len(df), float(value))


def throughput(slots: pd.DataFrame, window_s: float | None = None, duration_s=None,
               by: Sequence[str] | None = None) -> pd.DataFrame:
    """Delivered throughput in Mbit/s (bits of ACKed transmissions, counted at their ``t_us``).

    window_s None: one row per group, ``throughput_mbps`` over ``duration_s`` (a number or a
    point -> seconds mapping such as ``Logs.duration_s``; default: the span of the group's slots).
    window_s given: one row per group and window, ``t_s`` = window start.
    """
    _need(slots, "t_us", "delivered_bits")
    cols = keys(slots, by)
    if window_s is not None:
        w_us = int(round(window_s * 1e6))
        df = slots.assign(t_s=(slots["t_us"] // w_us) * w_us / 1e6)
        out = _groups(df, [*cols, "t_s"])["delivered_bits"].sum().rename("delivered_bits").to_frame()
        out["throughput_mbps"] = out["delivered_bits"] / window_s / 1e6
        return _finish(out, slots)
    dur = _per_point(duration_s, slots, "duration_s")
    df = slots.assign(_dur=dur if dur is not None else np.nan)
    g = _groups(df, cols)
    out = g.agg(delivered_bits=("delivered_bits", "sum"), t_min=("t_us", "min"), t_max=("t_us", "max"),
                _dur=("_dur", "first"))
    if dur is None:   # span of the slots plus one transmission spacing
        step_us = float(np.median(np.diff(np.unique(slots["t_us"])))) if slots["t_us"].nunique() > 1 else 0.0
        out["_dur"] = (out["t_max"] - out["t_min"] + step_us) / 1e6
    out["duration_s"] = out.pop("_dur")
    out["throughput_mbps"] = out["delivered_bits"] / out["duration_s"] / 1e6
    return _finish(out.drop(columns=["t_min", "t_max"]), slots)


def cell(slots: pd.DataFrame, duration_s=None, by: Sequence[str] | None = None) -> pd.DataFrame:
    """The cell per group (default: the swept parameters and ``point``, not ``ue``): ``cell_mbps`` (all
    UEs' delivered bits over ``duration_s``, as in ``throughput``), ``ue_p5_mbps`` (the 5th percentile
    of the UEs' throughputs, linear interpolation), ``jain`` ((sum x)^2 / (n sum x^2) of the UEs'
    throughputs, 1 = equal), ``max_share`` (the largest UE's share of the cell) and ``num_ues``."""
    _need(slots, "ue")
    cols = [c for c in keys(slots, by) if c != "ue"] if by is None else list(by)
    per_ue = throughput(slots, duration_s=duration_s, by=[*cols, "ue"])
    rows = []
    for key, g in (per_ue.groupby(cols, observed=True, sort=True, dropna=False) if cols else [((), per_ue)]):
        x = g["throughput_mbps"].to_numpy(float)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(cols, key)), "cell_mbps": x.sum(), "ue_p5_mbps": float(np.percentile(x, 5)),
                     "jain": float(x.sum() ** 2 / (len(x) * (x ** 2).sum())) if x.any() else 1.0,
                     "max_share": float(x.max() / x.sum()) if x.any() else np.nan, "num_ues": len(x)})
    out = pd.DataFrame(rows)
    out.attrs["params"] = [p for p in slots.attrs.get("params", ()) if p in out.columns]
    return out


def bler(slots: pd.DataFrame, max_transmissions, by: Sequence[str] | None = None) -> pd.DataFrame:
    """First-transmission BLER (NACKed first transmissions / first transmissions), residual BLER
    (TBs still NACKed at their last allowed transmission / TBs finished) and the mean first-tx MCS.

    ``max_transmissions``: ``harq.max_transmissions``, a number or a point -> number mapping
    (``Logs.max_transmissions``). TBs whose retransmission falls after the run are not finished.
    """
    _need(slots, "tx_round", "ack", "mcs")
    cols = keys(slots, by)
    max_tx = _per_point(max_transmissions, slots, "max_transmissions")
    first = slots["tx_round"] == 1
    finished = slots["ack"] | (slots["tx_round"] >= max_tx)
    df = pd.DataFrame({
        "first": first, "first_nack": first & ~slots["ack"], "finished": finished,
        "failed": finished & ~slots["ack"], "first_mcs": slots["mcs"].where(first).astype(float),
    }, index=slots.index)
    df[cols] = slots[cols]
    out = _groups(df, cols).agg(n_first_tx=("first", "sum"), first_nack=("first_nack", "sum"),
                                n_tb=("finished", "sum"), failed=("failed", "sum"), mean_mcs=("first_mcs", "mean"))
    out["first_tx_bler"] = out.pop("first_nack") / out["n_first_tx"].where(out["n_first_tx"] > 0)
    out["residual_bler"] = out.pop("failed") / out["n_tb"].where(out["n_tb"] > 0)
    return _finish(out[["first_tx_bler", "residual_bler", "mean_mcs", "n_first_tx", "n_tb"]], slots)


def bler_prediction_error(periods: pd.DataFrame, by: Sequence[str] | None = None,
                          snr_bin_db: float | None = None) -> pd.DataFrame:
    """Mean |bler_predicted - bler_observed| over the periods that have both (NaN: no predictor
    or no feedback in the period). ``snr_bin_db``: also per SNR bin (``snr_db`` = bin centre, a
    multiple of the bin width)."""
    _need(periods, "bler_predicted", "bler_observed")
    df = periods[periods["bler_predicted"].notna() & periods["bler_observed"].notna()]
    df = df.assign(abs_error=(df["bler_predicted"].astype(float) - df["bler_observed"].astype(float)).abs())
    cols = keys(periods, by)
    if snr_bin_db is not None:
        _need(periods, "snr_db")
        df = df.assign(snr_db=np.round(df["snr_db"].astype(float) / snr_bin_db) * snr_bin_db)
        cols = [*cols, "snr_db"]
    out = _groups(df, cols).agg(mean_abs_error=("abs_error", "mean"), n=("abs_error", "size"))
    return _finish(out, periods)


def csi_rd(periods: pd.DataFrame, updates: pd.DataFrame | None = None, by: Sequence[str] | None = None,
           csi_dimension: int | None = None, model: str | None = None) -> pd.DataFrame:
    """Rate-distortion point of the CSI feedback per group: ``nmse_db`` (mean NMSE in the linear
    domain, in dB), CSI bits per report, model-update bits per report (``updates`` rows of
    ``model``, all models if None), their total, and per CSI dimension when ``csi_dimension`` is
    given. Reports with NaN ``csi_nmse_db`` (no CSI codec) give NaN distortion."""
    _need(periods, "csi_bits", "csi_nmse_db")
    cols = keys(periods, by)
    df = periods.assign(_nmse=np.power(10.0, periods["csi_nmse_db"].astype(float) / 10.0))
    out = _groups(df, cols).agg(n_reports=("csi_bits", "size"), csi_bits=("csi_bits", "sum"),
                                _nmse=("_nmse", "mean"))
    out["nmse_db"] = 10.0 * np.log10(out.pop("_nmse"))
    upd_bits = pd.Series(0.0, index=out.index)
    if updates is not None and len(updates):
        u = updates if model is None else updates[updates["model"] == model]
        ucols = [c for c in cols if c in u.columns]
        if len(u) and ucols == cols:
            upd_bits = _groups(u, cols)["update_bits"].sum().reindex(out.index, fill_value=0).astype(float)
    out["csi_bits_per_report"] = out["csi_bits"] / out["n_reports"]
    out["update_bits_per_report"] = upd_bits / out["n_reports"]
    out["total_bits_per_report"] = out["csi_bits_per_report"] + out["update_bits_per_report"]
    if csi_dimension:
        out["rate_bits_per_dim"] = out["total_bits_per_report"] / csi_dimension
    return _finish(out.drop(columns=["csi_bits"]), periods)


def ber_gap_to_genie(slots: pd.DataFrame, genie: str = "genie_lmmse", by: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean uncoded BER per receiver and its gap to the genie receiver's (``ber - ber_genie`` and
    ``10 log10(ber / ber_genie)``), matched on ``by`` (default: the swept parameters except the
    receiver's, and ``ue``). Needs runs with ``receiver == genie``; BER is NaN in the abstraction."""
    _need(slots, "ber", "receiver")
    if by is None:
        by = [c for c in (*slots.attrs.get("params", ()), "ue") if c in slots.columns and c != "phy.receiver"]
    cols = keys(slots, by)
    per = _groups(slots, [*cols, "receiver"])["ber"].mean().rename("ber").reset_index()
    per["receiver"] = per["receiver"].astype(str)
    ref = per[per["receiver"] == genie].drop(columns="receiver").rename(columns={"ber": "ber_genie"})
    if ref.empty:
        raise ValueError(f"no slots with receiver {genie!r} (receivers: {sorted(per['receiver'].unique())})")
    out = per[per["receiver"] != genie].merge(ref, on=cols, how="left") if cols else \
        per[per["receiver"] != genie].assign(ber_genie=float(ref["ber_genie"].iloc[0]))
    out["ber_gap"] = out["ber"] - out["ber_genie"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ber_ratio_db"] = 10.0 * np.log10(out["ber"] / out["ber_genie"])
    out.attrs["params"] = [p for p in slots.attrs.get("params", ()) if p in out.columns]
    return out


def update_stats(updates: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Model updates per group and model: count, bits (total and mean), mean compute time, mean
    loss before/after."""
    _need(updates, "model", "update_bits", "compute_us")
    cols = keys(updates, by, extra=("model",))
    out = _groups(updates, cols).agg(n_updates=("update_bits", "size"), update_bits=("update_bits", "sum"),
                                     update_bits_mean=("update_bits", "mean"), compute_us_mean=("compute_us", "mean"),
                                     loss_before_mean=("loss_before", "mean"), loss_after_mean=("loss_after", "mean"))
    return _finish(out, updates)


# the values a metric can take: a confidence interval is clipped to them (a BLER's never goes below 0)
METRIC_RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("first_tx_bler", "residual_bler", "bler", "bler_observed", "bler_predicted", "jain",
                     "mean_abs_error", "sgcs", "csi_sgcs", "ber", "mu_share"), (0.0, 1.0)),
    **dict.fromkeys(("throughput_mbps", "cell_mbps", "ue_p5_mbps", "ue_mean_mbps", "mean_mcs", "update_bits",
                     "csi_bits"), (0.0, np.inf)),
}


def mean_ci(df: pd.DataFrame, value: str, by: Sequence[str] | None = None, level: float = 0.95,
            bounds: tuple[float, float] | None = None) -> pd.DataFrame:
    """Mean of ``value`` over the rows of each group with a Student-t confidence interval.

    Default ``by``: the swept parameters except ``seed``, so the rows averaged are the seeds
    (give one row per seed, e.g. a metric per point with ``by=[..., "point"]`` aggregated first).
    Columns: by + ``n``, ``mean``, ``std``, ``ci_low``, ``ci_high`` (NaN interval when n < 2). The
    interval is clipped to ``bounds``, by default the metric's range in ``METRIC_RANGES``.
    """
    _need(df, value)
    if by is None:
        by = [p for p in df.attrs.get("params", ()) if p != "seed" and p in df.columns]
    cols = keys(df, by)
    g = _groups(df.dropna(subset=[value]), cols)[value]
    out = g.agg(n="count", mean="mean", std="std")
    half = stats.t.ppf(0.5 + level / 2.0, out["n"] - 1) * out["std"] / np.sqrt(out["n"])
    half = half.where(out["n"] >= 2)
    lo, hi = bounds if bounds is not None else METRIC_RANGES.get(value, (-np.inf, np.inf))
    out["ci_low"] = (out["mean"] - half).clip(lower=lo)
    out["ci_high"] = (out["mean"] + half).clip(upper=hi)
    return _finish(out, df)
