"""The sweep file: a base scenario, the parameters to vary, their grid, one validated scenario per point.

A sweep file names a base scenario and the parameters to vary::

    base: scenarios/quickstart.yaml     # a scenario YAML (or an inline mapping)
    set: {duration_s: 10}               # fixed overrides for every point (optional)
    grid:                               # cartesian product, first key slowest
      link_adaptation.olla.bler_target: [0.05, 0.1]
      seed: [1, 2, 3]
    zip: {}                             # paired lists of one length, crossed with the grid
    output: {dir: results/my_sweep}

Every point is a fully validated scenario (schema and files) before anything runs; the errors
name the point and the field (:class:`SweepError`, exit code 2). Each point gets a readable folder name from
its parameters (:func:`point_names`); ``simulator.sweep.runner`` runs them.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.config import FieldError
from simulator.loader import ConfigError, load_yaml_config, read_yaml, set_path, validate_data
from simulator.schema import FolderName, Scenario
from simulator.validation import check_files


class SweepError(ConfigError):
    """Invalid sweep input: ``errors`` holds one ``[point NAME: ]field: message`` line per problem."""

    def __init__(self, errors: list[str], source: str = ""):
        super().__init__(errors, source, "sweep")


MAX_POINTS = 10_000          # points in one sweep (each a full run), counted before the grid is expanded


class SweepOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    dir: FolderName = Field(..., min_length=1, description="sweep folder: one run folder per point and sweep.json")


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    base: str | dict[str, Any] = Field(..., description="scenario YAML path (relative to the working directory, "
                                                        "else to the sweep file) or an inline scenario mapping")
    set: dict[str, Any] = Field(default_factory=dict, description="dotted key -> value for every point")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> values (cartesian product)")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> values, paired by position")
    output: SweepOutput

    @field_validator("grid", "zip")
    @classmethod
    def _non_empty_lists(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise FieldError(key, "needs at least one value")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "SweepSpec":
        lengths = {k: len(v) for k, v in self.zip.items()}
        if len(set(lengths.values())) > 1:
            raise FieldError("zip", f"lists must have one length (got {lengths})")
        for a, b in (("grid", "zip"), ("grid", "set"), ("zip", "set")):
            both = sorted(set(getattr(self, a)) & set(getattr(self, b)))
            if both:
                raise FieldError(b, f"{', '.join(both)} also in {a}")
        for key in (*self.set, *self.grid, *self.zip):
            if not key or any(not p for p in key.split(".")):
                raise FieldError("grid", f"{key!r}: empty key in dotted path")
        num_points = math.prod(len(v) for v in self.grid.values()) * (next(iter(lengths.values())) if lengths else 1)
        if num_points > MAX_POINTS:
            raise FieldError("grid", f"{num_points:,} points, more than {MAX_POINTS:,}: split the sweep into several "
                                     f"files (each point is a full run)")
        return self

    @property
    def keys(self) -> list[str]:
        return [*self.grid, *self.zip]


@dataclass(frozen=True)
class Point:
    name: str                  # folder name, from the parameters
    params: dict[str, Any]     # dotted key -> value
    scenario: Scenario         # validated, output.dir = the point folder

    @property
    def out_dir(self) -> Path:
        return Path(self.scenario.output.dir)


@dataclass
class Sweep:
    spec: SweepSpec
    points: list[Point]
    out_dir: Path
    source: str = ""

    def to_json(self) -> dict:
        return {"source": self.source, "spec": self.spec.model_dump(mode="json"), "params": self.spec.keys}


def _value_text(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, (int, float, str)):
        return str(v)
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


def point_names(keys: list[str], combos: list[tuple]) -> list[str]:
    """Readable, unique folder names: ``kind=cqi_tune,seed=3`` (the last key component unless two
    keys share it; characters outside ``[A-Za-z0-9._+=-]`` become ``_``; a hash if still ambiguous)."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    short = [s if last.count(s) == 1 else k for s, k in zip(last, keys)]
    names = []
    for combo in combos:
        text = ",".join(f"{s}={_value_text(v)}" for s, v in zip(short, combo)) or "point"
        names.append(re.sub(r"[^A-Za-z0-9._+=,-]", "_", text))
    for i, n in enumerate(names):
        if names.count(n) > 1 or len(n) > 120:
            digest = hashlib.sha256(json.dumps(list(combos[i]), default=str).encode()).hexdigest()[:8]
            names[i] = f"{n[:100]}-{digest}"
    return names


def _combos(spec: SweepSpec) -> list[tuple]:
    grid = list(itertools.product(*spec.grid.values())) if spec.grid else [()]
    zipped = list(zip(*spec.zip.values())) if spec.zip else [()]
    return [g + z for g in grid for z in zipped]


def _group_errors(per_point: dict[str, list[str]]) -> list[str]:
    """``point NAME: field: msg`` lines; a message shared by several points is listed once."""
    by_msg: dict[str, list[str]] = {}
    for name, lines in per_point.items():
        for line in lines:
            by_msg.setdefault(line, []).append(name)
    out = []
    for msg, names in by_msg.items():
        if len(names) == 1:
            out.append(f"point {names[0]}: {msg}")
        elif len(names) == len(per_point) and len(names) > 1:
            out.append(f"every point ({len(names)}): {msg}")
        else:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            out.append(f"points {shown}: {msg}")
    return out


def read_sweep(path: str | Path, out_dir: str | Path | None = None,
               progress: Callable[[int, int], None] | None = None) -> Sweep:
    """Read a sweep file and validate every point. Raises :class:`SweepError` naming point and field."""
    path = Path(path)
    try:
        spec = load_yaml_config(path, SweepSpec, what="sweep")
    except ConfigError as exc:
        raise SweepError(exc.errors, str(path)) from None
    if isinstance(spec.base, str):
        base_path = Path(spec.base)
        if not base_path.is_absolute() and not base_path.exists() and (path.parent / base_path).exists():
            base_path = path.parent / base_path
        try:
            base, _ = read_yaml(base_path)
        except ConfigError as exc:
            raise SweepError([f"base: {e}" for e in exc.errors], str(path)) from None
        if not isinstance(base, dict):
            raise SweepError([f"base: {base_path} is not a scenario mapping"], str(path))
        base_dir = base_path.parent           # the scenario's file paths resolve against its folder first
    else:
        base, base_dir = spec.base, path.parent
    if out_dir is not None and not str(out_dir).strip():
        raise SweepError(["--out: empty; give a folder (e.g. results/my_sweep)"], str(path))
    out = Path(out_dir if out_dir is not None else spec.output.dir)
    combos = _combos(spec)
    texts = [json.dumps(c, default=str, sort_keys=True) for c in combos]
    dupes = sorted({t for t in texts if texts.count(t) > 1})
    if dupes:
        repeated = point_names(spec.keys, [tuple(json.loads(t)) for t in dupes])
        raise SweepError([f"grid: points repeat ({', '.join(repeated)})"], str(path))
    names = point_names(spec.keys, combos)
    points, errors = [], {}
    for k, (name, combo) in enumerate(zip(names, combos)):
        if progress is not None:
            progress(k, len(combos))
        params = dict(zip(spec.keys, combo))
        scenario = copy.deepcopy(base)
        try:
            for key, value in [*spec.set.items(), *params.items(), ("output.dir", str(out / name))]:
                set_path(scenario, key.split("."), copy.deepcopy(value))
            points.append(Point(name, params, check_files(validate_data(scenario, base_dir=base_dir))))
        except ConfigError as exc:
            errors[name] = exc.errors
    if errors:
        raise SweepError(_group_errors(errors), str(path))
    return Sweep(spec, points, out, str(path))
