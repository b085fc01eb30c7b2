"""``airtune sweep``: read a sweep file, run it, report the points (exit codes in :func:`cmd_sweep`)."""
from __future__ import annotations

import sys

from simulator.loader import ConfigError
from simulator.sweep.runner import SWEEP_FILE, default_workers, run_sweep
from simulator.sweep.spec import SweepError, read_sweep


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
    from tqdm import tqdm

    bar = tqdm(unit="point", desc="validating", delay=1.0, leave=False, disable=args.no_progress,
               dynamic_ncols=True)

    def validated(k: int, n: int) -> None:
        bar.total = n
        bar.update(k - bar.n)

    try:
        sweep = read_sweep(args.sweep, args.out, progress=validated)
    except ConfigError as exc:
        bar.close()
        err(str(exc))
        return 2
    bar.close()

    def _term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _term)
    where = args.scheduler or f"LocalCluster ({args.workers or default_workers()} workers)"
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
