"""A study's per-point metrics kept as a committed CSV (``points.csv`` beside its RESULTS.md).

The logs of a study are hours of simulation and are not committed; its record is. With it the tables
and figures can be rebuilt on another machine without the logs, and ``airtune experiment`` runs only
the points the record lacks. Each row is one complete point: ``sweep`` (the sweep file's stem),
``point`` (its folder name), ``scenario_sha256`` (:func:`simulator.log_schema.scenario_digest` of its
resolved scenario) and the study's metrics.

Rows computed from logs replace the record's rows of the same sweep and point. Rows whose digest is
not that of the current sweep files' point (the scenario or the code's defaults changed) are stale and
dropped (``current``), so an edited sweep file re-runs its points.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

KEY = ["sweep", "point"]
COLUMNS = [*KEY, "scenario_sha256"]


def read_record(path: str | Path) -> pd.DataFrame:
    """The record's rows (an empty frame with the key columns when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    df = pd.read_csv(path, dtype={"sweep": str, "point": str, "scenario_sha256": str})
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a point record (no column {', '.join(missing)})")
    return df


def current_points(df: pd.DataFrame, current: dict[tuple[str, str], str]) -> list[bool]:
    """Per row of ``df``: whether its (sweep, point) is in ``current`` with the same scenario digest."""
    return [current.get((s, p)) == d for s, p, d in zip(df.sweep, df.point, df.scenario_sha256)]


def merge_record(record: pd.DataFrame, fresh: pd.DataFrame,
                 current: dict[tuple[str, str], str] | None = None) -> pd.DataFrame:
    """``fresh`` rows plus the ``record`` rows of other (sweep, point) keys; with ``current``
    ((sweep, point) -> scenario digest of the sweep files), only rows of a current point and digest."""
    old = record
    if len(fresh) and len(record):
        have = pd.MultiIndex.from_frame(fresh[KEY])
        old = record[~pd.MultiIndex.from_frame(record[KEY]).isin(have)]
    parts = [p for p in (fresh, old) if len(p)]
    df = pd.concat(parts, ignore_index=True) if parts else fresh.iloc[0:0]
    if current is not None and len(df):
        df = df[current_points(df, current)]
    return df.sort_values(KEY, kind="stable").reset_index(drop=True)


def write_record(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` sorted by sweep and point, floats in full precision (the same rows give the same bytes)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.sort_values(KEY, kind="stable").to_csv(tmp, index=False, float_format="%.17g", lineterminator="\n")
    tmp.replace(path)
