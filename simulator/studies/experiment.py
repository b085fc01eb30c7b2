"""``airtune experiment NAME``: run a paper's study (a set of sweep files) and write its tables.

An experiment is a folder of sweep files under ``scenarios/experiments/NAME/`` and a function
of ``analysis`` that turns their sweep folders into a markdown document. All sweeps run on one
Dask LocalCluster (or ``--scheduler``), so workers import TensorFlow once; re-running resumes
(complete points are skipped, see simulator/sweep/runner.py).

An experiment with a ``record`` (a committed ``points.csv``: analysis/point_record.py) also skips the
points the record holds with the same scenario, and its tables cover the record's points and the logs'.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Experiment:
    folder: str            # sweep files: <folder>/<pattern>
    patterns: tuple[str, ...]
    results: str           # default results root: one sweep folder per sweep file (its stem)
    table: str             # markdown written at the end
    record: str | None = None   # committed per-point metrics (analysis/point_record.py), or None

    def sweep_files(self, only: list[str] | None) -> list[Path]:
        files = sorted(f for pat in self.patterns for f in Path(self.folder).glob(pat))
        if only:
            files = [f for f in files if any(o in f.stem for o in only)]
        return files


EXPERIMENTS = {
    "lighttune": Experiment("scenarios/experiments/lighttune", ("prediction_*.yaml", "throughput_*.yaml", "tableonly_*.yaml", "measerror_*.yaml"),
                            "results/lighttune", "scenarios/experiments/lighttune/RESULTS.md"),
    "csi": Experiment("scenarios/experiments/csi", ("rd_*.yaml", "ablation_*.yaml", "interval.yaml"),
                      "results/csi", "scenarios/experiments/csi/RESULTS.md"),
    "csi_cell": Experiment("scenarios/experiments/csi_cell", ("codebooks.yaml", "neural.yaml", "interval.yaml"),
                           "results/csi_cell", "scenarios/experiments/csi_cell/RESULTS.md",
                           "scenarios/experiments/csi_cell/points.csv"),
}


def _markdown(name: str, root: Path, command: str, table: Path, current: dict | None = None) -> str:
    if name == "lighttune":
        from analysis.lighttune import results_markdown

        return results_markdown(root, command)
    if name == "csi":      # its PNG figures go next to the markdown; FINDINGS.md there is the discussion
        from analysis.csi import results_markdown as csi_markdown

        return csi_markdown(root, command, figures=table.parent, findings=table.parent / "FINDINGS.md")
    if name == "csi_cell":
        from analysis.csi_cell import results_markdown as csi_cell_markdown

        return csi_cell_markdown(root, command, figures=table.parent, findings=table.parent / "FINDINGS.md",
                                 record=EXPERIMENTS[name].record, current=current)
    raise KeyError(name)


def add_experiment_parser(sub) -> None:
    e = sub.add_parser("experiment", help="run a paper's study (its sweeps) and write its result tables")
    e.add_argument("name", choices=sorted(EXPERIMENTS))
    e.add_argument("--only", action="append", metavar="TEXT",
                   help="run only the sweep files whose name contains TEXT (repeatable), e.g. tdl_b50")
    e.add_argument("--out", help="results root (default results/NAME)")
    e.add_argument("--table", help="markdown file to write (default scenarios/experiments/NAME/RESULTS.md)")
    e.add_argument("--scheduler", metavar="ADDRESS", help="existing Dask scheduler (default: a LocalCluster)")
    e.add_argument("--workers", type=int, metavar="N", help="LocalCluster workers (default: one per core)")
    e.add_argument("--tables-only", action="store_true", help="do not run; rebuild the tables from the results")
    e.set_defaults(func=cmd_experiment)


def cmd_experiment(args) -> int:
    """Exit 0 all points complete, 1 some failed, 2 invalid input, 130 interrupted."""
    from simulator.loader import ConfigError
    from simulator.sweep.runner import dask_client, run_sweep
    from simulator.sweep.spec import SweepError, read_sweep

    exp = EXPERIMENTS[args.name]
    root = Path(args.out or exp.results)
    files = exp.sweep_files(args.only)
    if not files:
        print(f"--only: no sweep file of {exp.folder} matches {args.only}", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print(f"--workers: must be >= 1 (got {args.workers})", file=sys.stderr)
        return 2
    failed = 0
    current = None
    if exp.record is not None or not args.tables_only:
        try:   # validate every point of every sweep before anything runs
            every = exp.sweep_files(None) if exp.record is not None else files
            sweeps = {f: read_sweep(f, root / f.stem) for f in every}
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return 2
    if exp.record is not None:
        from simulator.loader import scenario_to_dict
        from simulator.log_schema import scenario_digest
        from analysis.point_record import current_points, read_record

        current = {(f.stem, p.name): scenario_digest(scenario_to_dict(p.scenario))
                   for f, sweep in sweeps.items() for p in sweep.points}
        rec = read_record(exp.record)
        rec = rec[current_points(rec, current)]
        recorded = set(zip(rec.sweep, rec.point))
    if not args.tables_only:
        sweeps = {f: sweeps[f] for f in files}
        if exp.record is not None:   # the record's points are done: run the others
            sweeps = {f: dataclasses.replace(s, points=[p for p in s.points if (f.stem, p.name) not in recorded])
                      for f, s in sweeps.items()}
            print(f"airtune: {len(recorded)} points already in {exp.record}", file=sys.stderr)
        total = sum(len(s.points) for s in sweeps.values())
        print(f"airtune: experiment {args.name}: {len(sweeps)} sweeps, {total} points -> {root}", file=sys.stderr)
        client = cluster = None
        try:
            if total:
                client, cluster = dask_client(args.scheduler, args.workers, total)   # one cluster for every sweep
            for f, sweep in sweeps.items():
                if not sweep.points:
                    continue
                print(f"sweep {f.name}: {len(sweep.points)} points", file=sys.stderr)
                res = run_sweep(sweep, client=client, progress=True)
                for name, error in res.failed.items():
                    print(f"{f.stem} point {name}: failed: {error}", file=sys.stderr)
                failed += len(res.failed)
                if exp.record is not None:   # the record keeps each finished sweep, should a later one be cut
                    _write_tables(args, exp, root, current)
        except SweepError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("airtune: experiment interrupted; re-run the same command to resume", file=sys.stderr)
            return 130
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
    _write_tables(args, exp, root, current)
    return 1 if failed else 0


def _write_tables(args, exp: Experiment, root: Path, current: dict | None) -> None:
    table = Path(args.table or exp.table)
    command = f"airtune experiment {args.name}" + "".join(f" --only {o}" for o in args.only or [])
    table.write_text(_markdown(args.name, root, command, table, current))
    print(f"tables -> {table}" + (f", points -> {exp.record}" if exp.record else ""), file=sys.stderr)
