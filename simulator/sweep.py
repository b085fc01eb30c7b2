"""Parameter sweeps on Dask distributed: one run folder per point, ``sweep.json``, resumable.

A sweep file names a base scenario and the parameters to vary::

    base: scenarios/quickstart.yaml     # a scenario YAML (or an inline mapping)
    set: {duration_s: 10}               # fixed overrides for every point (optional)
    grid:                               # cartesian product, first key slowest
      link_adaptation.olla.bler_target: [0.05, 0.1]
      seed: [1, 2, 3]
    zip: {}                             # paired lists of one length, crossed with the grid
    output: {dir: results/my_sweep}

Every point is a fully validated scenario before anything runs; the errors name the point
and the field (:class:`SweepError`, exit code 2). Points run on a Dask ``LocalCluster`` (one
process per worker, one thread each: TensorFlow lives in the worker processes) or on an
existing scheduler. Each point writes the engine's run layout into ``<output.dir>/<point>/``;
``<output.dir>/sweep.json`` holds the sweep, its points and their status. A re-run skips the
points whose run is complete (same scenario), and re-runs partial or failed ones from scratch
(the folder is removed first, so rows are never duplicated). A point that raises is recorded
as failed with its error; the others go on.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simulator.loader import ConfigError, load_yaml_config, read_yaml, scenario_to_dict, set_path, validate_data
from simulator.recorder import write_json_atomic
from simulator.schema import FieldError, Scenario

SWEEP_FILE = "sweep.json"
# Worker processes of the LocalCluster: one BLAS/OpenMP/TensorFlow thread each (one worker per core).
WORKER_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}


class SweepError(ConfigError):
    """Invalid sweep input: ``errors`` holds one ``[point NAME: ]field: message`` line per problem."""

    def __init__(self, errors: list[str], source: str = ""):
        super().__init__(errors, source, "sweep")


class SweepOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dir: str = Field(..., min_length=1, description="sweep folder: one run folder per point and sweep.json")


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
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


def read_sweep(path: str | Path, out_dir: str | Path | None = None) -> Sweep:
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
    else:
        base = spec.base
    out = Path(out_dir if out_dir is not None else spec.output.dir)
    combos = _combos(spec)
    texts = [json.dumps(c, default=str, sort_keys=True) for c in combos]
    dupes = sorted({t for t in texts if texts.count(t) > 1})
    if dupes:
        repeated = point_names(spec.keys, [tuple(json.loads(t)) for t in dupes])
        raise SweepError([f"grid: points repeat ({', '.join(repeated)})"], str(path))
    names = point_names(spec.keys, combos)
    points, errors = [], {}
    for name, combo in zip(names, combos):
        params = dict(zip(spec.keys, combo))
        scenario = copy.deepcopy(base)
        try:
            for key, value in [*spec.set.items(), *params.items(), ("output.dir", str(out / name))]:
                set_path(scenario, key.split("."), copy.deepcopy(value))
            points.append(Point(name, params, validate_data(scenario)))
        except ConfigError as exc:
            errors[name] = exc.errors
    if errors:
        raise SweepError(_group_errors(errors), str(path))
    return Sweep(spec, points, out, str(path))


# ---------------------------------------------------------------- running


def run_point(scenario: dict, out_dir: str) -> dict:
    """Run one point from scratch (a Dask task). Never raises for a failing run: returns its status."""
    from dataclasses import asdict

    from simulator.engine import Simulation

    t0 = time.monotonic()
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)             # partial or failed before: start again, never append
    try:
        summary = Simulation(validate_data(scenario), out).run()
    except Exception as exc:  # noqa: BLE001 - recorded as a failed point; the sweep goes on
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "wall_s": time.monotonic() - t0}
    return {"status": "complete", "error": None, "summary": asdict(summary), "wall_s": time.monotonic() - t0}


def point_state(point: Point) -> str:
    """``complete`` (same scenario, closed cleanly), ``other`` (a different scenario's run), or ``todo``."""
    man_path = point.out_dir / "manifest.json"
    if not man_path.exists():
        return "todo"
    try:
        man = json.loads(man_path.read_text())
    except (OSError, json.JSONDecodeError):
        return "todo"
    if man.get("scenario") != scenario_to_dict(point.scenario):
        return "other"
    done = man.get("status") == "complete" and all((point.out_dir / f"{t}.parquet").is_file()
                                                  for t in ("slots", "periods", "updates"))
    return "complete" if done else "todo"


@dataclass
class SweepResult:
    out_dir: Path
    complete: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


class _Book:
    """sweep.json: the sweep, its points and their status, rewritten atomically on every change."""

    def __init__(self, sweep: Sweep, states: dict[str, str]):
        self.path = sweep.out_dir / SWEEP_FILE
        self.doc = {"sweep": sweep.to_json(), "status": "running",
                    "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "points": []}
        for p in sweep.points:
            row = {"name": p.name, "dir": p.name, "params": p.params, "status": "pending", "error": None}
            if states[p.name] == "complete":      # skipped: its figures from its own manifest
                man = json.loads((p.out_dir / "manifest.json").read_text())
                row.update(status="complete", wall_s=man.get("wall_s"), summary=man.get("summary"))
            self.doc["points"].append(row)
        self._rows = {r["name"]: r for r in self.doc["points"]}
        self.write()

    def set(self, name: str, **fields) -> None:
        self._rows[name].update(fields)
        self.write()

    def write(self, **fields) -> None:
        self.doc.update(fields)
        write_json_atomic(self.path, self.doc)


def _default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def dask_client(scheduler: str | None, workers: int | None, todo: int):
    """A Dask client: on ``scheduler`` if given, else on a new LocalCluster (processes, 1 thread each)."""
    import logging

    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    n = max(1, min(workers or _default_workers(), todo))
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in every worker, so glibc hands freed memory
    # back to the kernel at once and each new numpy array page-faults in again: a quickstart point
    # ran at 1.25-1.3x its in-process time. The workers keep glibc's default here.
    pre_spawn = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()
                 if k != "MALLOC_TRIM_THRESHOLD_"}
    with warnings.catch_warnings(), dask.config.set({"distributed.nanny.pre-spawn-environ": pre_spawn}):
        warnings.simplefilter("ignore", UserWarning)   # "port 8787 in use" when another Dask cluster runs here
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR, env=dict(WORKER_ENV))
    return Client(cluster), cluster


def _close(client, cluster) -> None:
    """Close the client; stop our own LocalCluster fast. Every finished point has closed its run
    before its task returned, so the workers are SIGKILLed rather than shut down politely (a
    TensorFlow process takes seconds to exit, and Dask's graceful close waited ~4 s on 2 cores)."""
    import logging
    import signal

    if cluster is None:
        client.close()
        return
    try:
        pids = list(client.run(os.getpid, wait=True).values())
    except Exception:  # noqa: BLE001 - a worker already gone: fall back to the polite close
        pids = []
    for nanny in cluster.workers.values():
        nanny.auto_restart = False
    client.close()
    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.CRITICAL)          # the nannies report their workers' deaths
    try:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        cluster.close()
    finally:
        log.setLevel(level)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="point", disable=not enabled, dynamic_ncols=True,
                bar_format="sweep {n_fmt}/{total_fmt} points |{bar}| {desc} [{elapsed} elapsed, ETA {remaining}]")


def run_sweep(sweep: Sweep, *, scheduler: str | None = None, workers: int | None = None, client=None,
              overwrite: bool = False, progress: bool = False,
              on_point: Callable[[str, dict], None] | None = None) -> SweepResult:
    """Run the points that are not complete yet; write ``sweep.json`` as they finish.

    Executor: ``client`` (a ``dask.distributed.Client`` the caller owns), else a client of the
    ``scheduler`` address, else a new LocalCluster of ``workers`` processes (default one per core).

    Raises :class:`SweepError` before running anything when a point folder holds a run of a
    different scenario (unless ``overwrite``). ``KeyboardInterrupt`` marks the sweep interrupted.
    """
    t0 = time.monotonic()
    states = {p.name: point_state(p) for p in sweep.points}
    other = [n for n, s in states.items() if s == "other"]
    if other and not overwrite:
        shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3 else "")
        raise SweepError([f"output.dir: {sweep.out_dir} holds runs of a different scenario for point(s) {shown}; "
                          f"pass --overwrite to replace them or choose another --out"], sweep.source)
    sweep.out_dir.mkdir(parents=True, exist_ok=True)
    book = _Book(sweep, states)
    result = SweepResult(sweep.out_dir, skipped=[n for n, s in states.items() if s == "complete"])
    todo = [p for p in sweep.points if states[p.name] != "complete"]
    if not todo:
        book.write(status="complete", wall_s=0.0)
        result.wall_s = time.monotonic() - t0
        return result
    bar = _progress(len(todo), progress)
    bar.set_description_str(f"done 0, failed 0, skipped {len(result.skipped)}")
    own = client is None
    cluster = None
    try:
        from dask.distributed import as_completed

        if own:
            client, cluster = dask_client(scheduler, workers, len(todo))
        futures = {}
        for p in todo:
            fut = client.submit(run_point, scenario_to_dict(p.scenario), str(p.out_dir.resolve()),
                                key=f"airtune-point-{p.name}-{os.urandom(4).hex()}", pure=False, retries=0)
            futures[fut] = p.name
            book.set(p.name, status="submitted", error=None)
        for fut in as_completed(futures):
            name = futures[fut]
            if fut.status == "finished":
                res = fut.result()
            elif fut.status == "error":       # the worker died (KilledWorker) or the task could not run
                exc = fut.exception()
                res = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            else:
                res = {"status": "failed", "error": f"task {fut.status}"}
            book.set(name, **res)
            if res["status"] == "complete":
                result.complete.append(name)
            else:
                result.failed[name] = res["error"]
            if on_point is not None:
                on_point(name, res)
            bar.set_description_str(f"done {len(result.complete)}, failed {len(result.failed)}, "
                                    f"skipped {len(result.skipped)}", refresh=False)
            bar.update(1)
    except KeyboardInterrupt:
        book.write(status="interrupted", wall_s=time.monotonic() - t0)
        raise
    except BaseException as exc:
        book.write(status="failed", error=f"{type(exc).__name__}: {exc}", wall_s=time.monotonic() - t0)
        raise
    finally:
        bar.close()
        if own and client is not None:
            _close(client, cluster)
    result.wall_s = time.monotonic() - t0
    book.write(status="complete" if result.ok else "failed", wall_s=result.wall_s)
    return result


# ---------------------------------------------------------------- command line


def add_sweep_parser(sub) -> None:
    s = sub.add_parser("sweep", help="run a parameter sweep on Dask (resumable)")
    s.add_argument("sweep", help="sweep YAML (base, set, grid, zip, output)")
    s.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler, e.g. tcp://host:8786 "
                                                        "(default: a LocalCluster on this machine)")
    s.add_argument("--workers", type=int, metavar="N", help="LocalCluster workers (default: one per core)")
    s.add_argument("--out", help="sweep folder (overrides output.dir)")
    s.add_argument("--overwrite", action="store_true", help="replace point folders that hold another scenario")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    """Exit 0 all points complete, 1 some failed, 2 invalid input, 130 interrupted."""
    import signal

    def err(msg: str) -> None:
        print(msg, file=sys.stderr)

    if args.workers is not None and args.workers < 1:
        err(f"--workers: must be >= 1 (got {args.workers})")
        return 2
    if args.scheduler:
        from distributed.comm.addressing import get_address_host_port

        try:
            get_address_host_port(args.scheduler)
        except ValueError as exc:
            err(f"--scheduler: {exc} (expected e.g. tcp://host:8786)")
            return 2
    try:
        sweep = read_sweep(args.sweep, args.out)
    except ConfigError as exc:
        err(str(exc))
        return 2
    if sweep.out_dir.exists() and not sweep.out_dir.is_dir():
        err(f"output.dir: {sweep.out_dir} exists and is not a folder")
        return 2

    def _term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _term)
    where = args.scheduler or f"LocalCluster ({args.workers or _default_workers()} workers)"
    err(f"airtune: sweep {args.sweep}: {len(sweep.points)} points on {where} -> {sweep.out_dir}")
    try:
        res = run_sweep(sweep, scheduler=args.scheduler, workers=args.workers, overwrite=args.overwrite,
                        progress=not args.no_progress)
    except SweepError as exc:
        err(str(exc))
        return 2
    except KeyboardInterrupt:
        err(f"airtune: sweep interrupted; re-run the same command to finish it ({sweep.out_dir / SWEEP_FILE})")
        return 130
    except OSError as exc:
        err(f"--scheduler: cannot reach {args.scheduler}: {exc}" if args.scheduler else f"airtune: {exc}")
        return 2 if args.scheduler else 1
    for name, error in res.failed.items():
        err(f"point {name}: failed: {error}")
    print(f"sweep: {len(sweep.points)} points: {len(res.complete)} run, {len(res.skipped)} already complete, "
          f"{len(res.failed)} failed in {res.wall_s:.1f} s -> {sweep.out_dir / SWEEP_FILE}")
    return 0 if res.ok else 1

