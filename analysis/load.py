"""Run and sweep folders -> tidy pandas DataFrames.

``load_run(folder)`` reads one run (``manifest.json`` + the three Parquet logs);
``load_sweep(folder)`` reads every point of a sweep (``sweep.json``) into the same three
tables with the swept parameters as columns (named by their dotted keys, e.g.
``"link_adaptation.backoff.kind"``). Both add ``point`` (the run folder's name, categorical)
and ``t_s`` (seconds, float) next to the integer ``t_us``; names (``receiver``, ``model``,
``trigger``, string parameters) are categoricals. Only the log schema is imported from the
engine.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from simulator.log_schema import TABLES

CATEGORICAL = {"slots": ("receiver",), "periods": (), "updates": ("model", "trigger")}
SUMMARY_COLUMNS = ("throughput_mbps", "first_tx_bler", "residual_bler", "mean_mcs", "transmissions", "wall_s")


class LoadError(ValueError):
    """Not a run or sweep folder (or an unreadable one)."""


@dataclass
class Logs:
    """The logs of a run or a sweep; ``slots``/``periods``/``updates`` as in ``simulator.log_schema``
    plus ``point``, the swept parameters and ``t_s``."""
    slots: pd.DataFrame
    periods: pd.DataFrame
    updates: pd.DataFrame
    points: pd.DataFrame                   # one row per point: point, status, error, params, scenario facts, summary
    params: list[str]                      # swept parameter columns ([] for a single run)
    meta: dict                             # manifest.json (run) or sweep.json (sweep)
    path: Path
    kind: str                              # "run" or "sweep"
    scenarios: dict[str, dict] = field(default_factory=dict)   # point -> resolved scenario

    @property
    def duration_s(self) -> dict[str, float]:
        """Simulated duration per point (for ``metrics.throughput``)."""
        return {p: float(sc["duration_s"]) for p, sc in self.scenarios.items()}

    @property
    def max_transmissions(self) -> dict[str, int]:
        """HARQ transmissions per TB per point (for ``metrics.bler``)."""
        return {p: int(sc["harq"]["max_transmissions"]) for p, sc in self.scenarios.items()}


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{path}: unreadable ({exc})") from None
    if not isinstance(doc, dict):
        raise LoadError(f"{path}: not a JSON object (got a {type(doc).__name__}): not written by airtune")
    return doc


def read_table(run_dir: Path, name: str) -> pd.DataFrame:
    """One log as written (a merged file or, for a partial run, a folder of parts)."""
    p = Path(run_dir) / f"{name}.parquet"
    if not p.exists():
        return TABLES[name].empty_table().to_pandas()
    return pd.read_parquet(p)


def _param_value(v):
    """Scalars as they are; lists and mappings (e.g. a whole model section) as compact JSON text."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def _tidy(df: pd.DataFrame, name: str, point: str, params: dict) -> pd.DataFrame:
    df = df.copy()
    df.insert(df.columns.get_loc("t_us") + 1, "t_s", df["t_us"].to_numpy() / 1e6)
    df.insert(0, "point", point)
    for i, (k, v) in enumerate(params.items()):
        df.insert(1 + i, k, _param_value(v))
    return df


def _categoricals(df: pd.DataFrame, cols, order: dict[str, list] | None = None) -> pd.DataFrame:
    for c in cols:
        if c in df.columns and (df[c].dtype == object or pd.api.types.is_string_dtype(df[c])):
            cats = [v for v in (order or {}).get(c, []) if v is not None]
            seen = [v for v in pd.unique(df[c].dropna()) if v not in cats]
            df[c] = pd.Categorical(df[c], categories=[*cats, *seen])
    return df


def _assemble(runs: list[tuple[str, Path, dict, dict]], params: list[str], order: dict[str, list]) -> dict:
    """runs: (point, folder, params, manifest) -> the three concatenated tables with attrs['params']."""
    out = {}
    for name, schema in TABLES.items():
        frames = [_tidy(read_table(folder, name), name, point, prm) for point, folder, prm, _ in runs]
        if not frames:
            frames = [_tidy(schema.empty_table().to_pandas(), name, "", {p: None for p in params})]
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        df = _categoricals(df, ("point", *params, *CATEGORICAL[name]), {"point": [r[0] for r in runs], **order})
        df.attrs["params"] = list(params)
        out[name] = df
    return out


def _point_row(point: str, manifest: dict | None, params: dict, status: str, error) -> dict:
    sc = (manifest or {}).get("scenario") or {}
    summary = (manifest or {}).get("summary") or {}
    row = {"point": point, "status": status, "error": error, **{k: _param_value(v) for k, v in params.items()},
           "scenario": sc.get("name"), "seed": sc.get("seed"), "duration_s": sc.get("duration_s"),
           "num_ues": len(sc.get("ues", [])) or None}
    row.update({k: summary.get(k) for k in SUMMARY_COLUMNS if k != "wall_s"})
    row["wall_s"] = (manifest or {}).get("wall_s")
    row["git_commit"] = (manifest or {}).get("git_commit")
    return row


def load_run(path: str | Path) -> Logs:
    """A run folder (``manifest.json``, ``slots.parquet``, ...); partial runs are read as far as written."""
    path = Path(path)
    man_path = path / "manifest.json"
    if not man_path.is_file():
        raise LoadError(f"{path}: not a run folder (no manifest.json)")
    man = _read_json(man_path)
    point = path.resolve().name
    tables = _assemble([(point, path, {}, man)], [], {})
    points = pd.DataFrame([_point_row(point, man, {}, man.get("status"), man.get("error"))])
    points = _categoricals(points, ("point",))
    return Logs(**tables, points=points, params=[], meta=man, path=path, kind="run",
                scenarios={point: man.get("scenario") or {}})


def load_sweep(path: str | Path, statuses: tuple[str, ...] = ("complete",)) -> Logs:
    """A sweep folder (``sweep.json`` + one run folder per point). Points whose run status (from
    their manifest) is in ``statuses`` are loaded; ``points`` lists them all with their status."""
    path = Path(path)
    sw_path = path / "sweep.json"
    if not sw_path.is_file():
        raise LoadError(f"{path}: not a sweep folder (no sweep.json)")
    doc = _read_json(sw_path)
    params = list((doc.get("sweep") or {}).get("params") or [])
    runs, rows, scenarios = [], [], {}
    order: dict[str, list] = {p: [] for p in params}
    for pt in doc.get("points", []):
        folder = path / pt.get("dir", pt["name"])
        man = _read_json(folder / "manifest.json") if (folder / "manifest.json").is_file() else None
        status = (man or {}).get("status", pt.get("status", "pending"))
        error = (man or {}).get("error") or pt.get("error")
        prm = {k: pt.get("params", {}).get(k) for k in params}
        for k, v in prm.items():
            if _param_value(v) not in order[k]:
                order[k].append(_param_value(v))
        rows.append(_point_row(pt["name"], man, prm, status, error))
        if man is not None and status in statuses:
            runs.append((pt["name"], folder, prm, man))
            scenarios[pt["name"]] = man.get("scenario") or {}
    tables = _assemble(runs, params, order)
    points = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["point", "status", "error", *params])
    points = _categoricals(points, ("point", *params), {"point": [r["point"] for r in rows], **order})
    return Logs(**tables, points=points, params=params, meta=doc, path=path, kind="sweep", scenarios=scenarios)


def load(path: str | Path) -> Logs:
    """``load_sweep`` for a sweep folder, ``load_run`` for a run folder."""
    path = Path(path)
    if (path / "sweep.json").is_file():
        return load_sweep(path)
    if (path / "manifest.json").is_file():
        return load_run(path)
    raise LoadError(f"{path}: neither a run folder (manifest.json) nor a sweep folder (sweep.json)")
