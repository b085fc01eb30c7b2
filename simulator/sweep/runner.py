"""Run a sweep on Dask distributed: one run folder per point, ``sweep.json``, resumable.

Points run on a Dask ``LocalCluster`` (one process per worker, one thread each: TensorFlow
lives in the worker processes) or on an existing scheduler. Each point writes the engine's run
layout into ``<output.dir>/<point>/``; ``<output.dir>/sweep.json`` holds the sweep, its points
and their status. A re-run skips the points whose run is complete (same scenario), and re-runs
partial or failed ones from scratch (the folder is removed first, so rows are never
duplicated). A point that raises is recorded as failed with its error; the others go on.
"""
from __future__ import annotations

import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from simulator.loader import scenario_to_dict, validate_data
from simulator.log_schema import result_fields
from simulator.manifest import read_manifest
from simulator.output_folder import FolderError, claim
from simulator.recorder import write_json_atomic
from simulator.sweep.spec import Point, Sweep, SweepError
from simulator.threads import thread_env
from simulator.validation import check_files

SWEEP_FILE = "sweep.json"
# Worker processes of the LocalCluster: one BLAS/OpenMP/TensorFlow thread each (one worker per core).
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", **thread_env(1)}


def run_point(scenario: dict, out_dir: str) -> dict:
    """Run one point from scratch (a Dask task). Never raises for a failing run: returns its status."""
    from dataclasses import asdict

    from simulator.engine import Simulation
    from simulator.quiet import load_tensorflow

    load_tensorflow()           # the worker's first TensorFlow import: its start-up lines off the terminal
    t0 = time.monotonic()
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)             # partial or failed before: start again, never append
    try:
        summary = Simulation(check_files(validate_data(scenario)), out).run()
    except Exception as exc:  # noqa: BLE001 - recorded as a failed point; the sweep goes on
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "wall_s": time.monotonic() - t0}
    return {"status": "complete", "error": None, "summary": asdict(summary), "wall_s": time.monotonic() - t0}


def point_state(point: Point) -> str:
    """``complete`` (same scenario, closed cleanly), ``other`` (a different scenario's run), or ``todo``."""
    try:
        man = read_manifest(point.out_dir)
    except ValueError:                 # unreadable: run it again from scratch
        return "todo"
    if man is None:
        return "todo"
    if not isinstance(man.get("scenario"), dict) or \
            result_fields(man["scenario"]) != result_fields(scenario_to_dict(point.scenario)):
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
                man = read_manifest(p.out_dir)
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


def default_workers() -> int:
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
    n = max(1, min(workers or default_workers(), todo))
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

    Raises :class:`SweepError` before running anything when the sweep folder cannot be written or
    another process holds it (``simulator.output_folder``), or when a point folder holds a run of a
    different scenario (unless ``overwrite``). ``KeyboardInterrupt`` marks the sweep interrupted.
    """
    try:
        with claim(sweep.out_dir):
            return _run_claimed(sweep, scheduler, workers, client, overwrite, progress, on_point)
    except FolderError as exc:
        raise SweepError([str(exc)], sweep.source) from None


def _run_claimed(sweep: Sweep, scheduler, workers, client, overwrite, progress, on_point) -> SweepResult:
    t0 = time.monotonic()
    states = {p.name: point_state(p) for p in sweep.points}
    other = [n for n, s in states.items() if s == "other"]
    if other and not overwrite:
        shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3 else "")
        raise SweepError([f"output.dir: {sweep.out_dir} holds runs of a different scenario for point(s) {shown}; "
                          f"pass --overwrite to replace them or choose another --out"], sweep.source)
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
