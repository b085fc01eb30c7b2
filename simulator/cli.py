"""``airtune``: run, validate and describe scenarios.

Exit codes: 0 success, 2 invalid input (scenario errors, refused output folder),
1 a run that failed, 130 an interrupted run. Input errors never print a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from models.base import BLER_FEATURES
from models.checkpoint import save_checkpoint
from models.deeprx.data import read_description
from models.ff_bler.train import train_bler_predictor
from models.mlp_bler.train import train_mlp_bler
from simulator import quiet
from simulator.status import StatusLine
from simulator.threads import DEFAULT_THREADS, ENV_VAR, limit_threads, threads_setting

EXIT_INPUT = 2


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_validate(args) -> int:
    from simulator.loader import ConfigError, load_scenario
    from simulator.validation import check_files

    try:
        sc = check_files(load_scenario(args.scenario, args.set), args.scenario)
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_INPUT
    print(f"{args.scenario}: ok ({sc.name}: {len(sc.ues)} UE(s), {sc.duration_s} s, {sc.num_slots} slots, "
          f"backend {sc.phy.backend})")
    return 0


def cmd_schema(args) -> int:
    from simulator.schema import scenario_json_schema

    print(json.dumps(scenario_json_schema(), indent=2))
    return 0


def cmd_run(args) -> int:
    from simulator.loader import ConfigError, load_scenario
    from simulator.validation import check_files

    overrides = list(args.set)
    if args.out is not None:
        overrides.append(f"output.dir={args.out}")
    try:
        sc = check_files(load_scenario(args.scenario, overrides), args.scenario)
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_INPUT
    from simulator.output_folder import FolderError, claim

    try:
        with claim(sc.output.dir) as out_dir:
            return _run_in(sc, out_dir, args)
    except FolderError as exc:
        _err(str(exc))
        return EXIT_INPUT


def _run_in(sc, out_dir: Path, args) -> int:
    """Run ``sc`` into the claimed folder ``out_dir`` (refused, exit 2, if it holds another run)."""
    from simulator.engine import Simulation
    from simulator.loader import scenario_to_dict
    from simulator.manifest import rerun_refusal

    refusal = None if args.overwrite else rerun_refusal(out_dir, scenario_to_dict(sc))
    if refusal:
        _err(refusal)
        return EXIT_INPUT

    def _term(signum, frame):  # SIGTERM closes the partial log like Ctrl-C does
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _term)
    print(f"airtune: running {sc.name} ({sc.duration_s} s, {len(sc.ues)} UE(s), {sc.phy.backend}) -> {out_dir}",
          file=sys.stderr)
    try:
        summary = Simulation(sc, out_dir, progress=not args.no_progress).run()
    except KeyboardInterrupt:
        _err(f"airtune: interrupted; partial logs kept in {out_dir} (manifest status 'interrupted')")
        return 130
    except Exception as exc:  # noqa: BLE001 - report, keep the partial log, non-zero exit
        _err(f"airtune: run failed: {type(exc).__name__}: {exc}; partial logs kept in {out_dir} "
             f"(manifest status 'failed')")
        if os.environ.get("AIRTUNE_DEBUG"):
            raise
        return 1
    print(f"{sc.name}: {summary.format()}")
    print(f"logs: {out_dir}/slots.parquet periods.parquet updates.parquet manifest.json")
    return 0


def _cmd_data_shards(args, data, summary, **kwargs) -> int:
    """``airtune data csi|deeprx``: ``data`` (a ``simulator.datagen`` module) has load_data_config and
    generate_dataset (shards + description); ``kwargs`` go to generate_dataset."""
    try:
        cfg = data.load_data_config(args.config)
        path = data.generate_dataset(cfg, args.out,
                                     progress=lambda k, n: print(f"shard {k}/{n}", file=sys.stderr, flush=True),
                                     **kwargs)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_INPUT
    print(f"{summary(cfg)} -> {path}")
    return 0


def cmd_data_csi(args) -> int:
    from simulator.datagen import csi

    return _cmd_data_shards(args, csi, lambda cfg: (
        f"{cfg.num_samples} CSI samples [{cfg.num_ant} antennas, {cfg.num_subcarriers} subcarriers]"))


def cmd_data_deeprx(args) -> int:
    from simulator.datagen import deeprx

    return _cmd_data_shards(args, deeprx, lambda cfg: (
        f"{cfg.num_samples} DeepRx slots [14 symbols, {12 * cfg.num_prbs} subcarriers]"), workers=args.workers)


def cmd_data(args) -> int:
    if args.model == "csi":
        return cmd_data_csi(args)
    if args.model == "deeprx":
        return cmd_data_deeprx(args)
    from simulator.loader import ConfigError
    from simulator.datagen.bler import collect_bler_dataset, load_data_config

    try:
        cfg = load_data_config(args.config)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        df = collect_bler_dataset(cfg, progress=lambda k, n: print(f"point {k}/{n}", file=sys.stderr, flush=True))
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_INPUT
    df.to_parquet(out)
    print(f"{len(df)} periods -> {out}")
    return 0


def cmd_train_deeprx(args) -> int:
    from models.deeprx.train import DeepRxTrainConfig, load_and_train     # lazy: TensorFlow
    from simulator.datagen.deeprx import data_config_of, reference_receivers

    try:
        cfg = DeepRxTrainConfig(preset=args.preset, steps=args.steps or 2000, batch_size=args.batch_size or 16,
                                learning_rate=args.lr or 1e-3, lr_schedule=args.lr_schedule,
                                num_samples=args.samples, seed=args.seed)
        try:
            reference = reference_receivers(data_config_of(read_description(args.data)))
        except ValueError as exc:
            raise ValueError(f"--data: {exc}") from None
        path, m = load_and_train(args.data, cfg, args.out, command=args.command_line,
                                 log=lambda msg: print(msg, file=sys.stderr, flush=True), init=args.init,
                                 reference_llrs=reference)
    except (OSError, ValueError) as exc:
        _err(str(exc))
        return EXIT_INPUT
    print(f"held-out BER {m['holdout_ber']:.4f} (LS+LMMSE {m['holdout_ber_lmmse']:.4f}, genie LMMSE "
          f"{m['holdout_ber_genie_lmmse']:.4f}), BCE {m['holdout_bce']:.4f} -> {path}")
    return 0


def cmd_train_conv_csi(args) -> int:
    """Rate-distortion training of the conv CSI codec (``models.csi_codec.train.train_rd``); on a dataset
    drawn from a scenario's channel (source: scenario) the record also holds the held-out SGCS of the
    precoders the gNB would derive from the reconstructions (``CodecGrid.sgcs``)."""
    from models.csi_codec.data import load_split, read_description as read_csi_description
    from models.csi_codec.train import print_step, reconstruct, summary_line, train_rd     # lazy: TensorFlow
    import numpy as np

    from simulator.csi.codec_grid import CodecGrid
    from simulator.loader import validate_data

    try:
        desc = read_csi_description(args.data)
    except (OSError, ValueError) as exc:
        _err(f"--data: {exc}")
        return EXIT_INPUT
    codec, training = train_rd(args.data, args.lmbda, args.filters, args.steps or 1000, args.batch_size or 32,
                               args.lr or 1e-3, args.seed, log=print_step)
    if desc["config"]["source"] == "scenario":
        sc = validate_data(desc["scenario"])
        num_ant, num_sc, _ = desc["shape"]
        grid = CodecGrid(num_ant, num_sc, sc.gnb.num_antennas, sc.carrier.num_prbs, sc.csi_rs.report.subband_prbs)
        x = load_split(args.data, "test")
        per_subband = grid.sgcs(x, reconstruct(codec, x))                                  # [n, subbands]
        training["test"].update({"sgcs": float(per_subband.mean()),
                                 "sgcs_p5": float(np.percentile(per_subband.mean(axis=1), 5))})
    training = {"command": args.command_line, "data": str(args.data), **training}
    path = codec.save(args.out, training=training)
    print(summary_line(training["test"], path))
    return 0


def cmd_train(args) -> int:
    if args.model == "deeprx":
        return cmd_train_deeprx(args)
    if args.model == "conv_csi":
        return cmd_train_conv_csi(args)
    import pandas as pd

    data = Path(args.data)
    if not data.exists():
        _err(f"--data: {data}: no such file (make it with `airtune data ff_bler`)")
        return EXIT_INPUT
    df = pd.read_parquet(data)
    missing = [c for c in (*BLER_FEATURES, "bler_observed") if c not in df.columns]
    if missing:
        _err(f"--data: {data} lacks columns {missing}")
        return EXIT_INPUT
    x, y = df[list(BLER_FEATURES)].to_numpy(), df.bler_observed.to_numpy()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.model == "mlp_bler":
        cfg, weights, metrics = train_mlp_bler(x, y, epochs=args.epochs or 250, lr=args.lr or 1e-3, seed=args.seed,
                                               log=log)
    else:
        cfg, weights, metrics = train_bler_predictor(
            x, y, epochs=args.epochs or 30, lr=args.lr or 0.003, loss=args.loss, seed=args.seed,
            sizes=tuple(int(v) for v in args.sizes.split(",")), threshold=args.threshold,
            label_encoding=args.label_encoding, normalize_hidden=args.normalize_hidden, goodness=args.goodness,
            log=log)
    from dataclasses import asdict

    doc = {**asdict(cfg), "sizes": list(cfg.sizes), "training": {**metrics, "data": str(data),
                                                                   "command": args.command_line}}
    path = save_checkpoint(args.out, doc, weights)
    print(f"held-out mean |predicted - observed BLER| {metrics['holdout_mae']:.3f} "
          f"(best constant {metrics['constant_mae']:.3f}) -> {path}")
    return 0


def cmd_report(args) -> int:
    from analysis.report import ReportError, write_report     # lazy: matplotlib costs every command ~2 s

    try:
        path = write_report(args.path, args.out)
    except ReportError as exc:
        _err(str(exc))
        return EXIT_INPUT
    print(path)
    return 0


def _threads_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help=f"BLAS, OpenMP and TensorFlow threads each (default ${ENV_VAR}, else {DEFAULT_THREADS}; "
                        f"0: the libraries' defaults, one per core)")


def _with_parents(common: argparse.ArgumentParser):
    """An ArgumentParser class whose instances take ``common``'s options (for add_subparsers)."""

    class Parser(argparse.ArgumentParser):
        def __init__(self, *a, **k):
            k.setdefault("parents", [common])
            super().__init__(*a, **k)

    return Parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="airtune", description="Link-level wireless simulator with online-adapting models")
    verbose_help = "show the libraries' start-up lines and warnings (TensorFlow, absl, oneDNN, CUDA)"
    p.add_argument("--verbose", action="store_true", help=verbose_help)
    # also accepted after the command (airtune run X --verbose): a parent of every sub-parser
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_with_parents(common))

    r = sub.add_parser("run", help="run a scenario YAML")
    r.add_argument("scenario")
    r.add_argument("--out", help="output folder (overrides output.dir)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field, e.g. --set phy.backend=link_level (repeatable)")
    r.add_argument("--overwrite", action="store_true", help="replace a run of a different scenario in --out")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    _threads_argument(r)
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="check a scenario YAML (exit 0, or 2 with field-path errors)")
    v.add_argument("scenario")
    v.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("schema", help="print the scenario JSON Schema")
    s.set_defaults(func=cmd_schema)

    d = sub.add_parser("data", help="generate training data with the simulator")
    d.add_argument("model", choices=["ff_bler", "csi", "deeprx"],
                   help="ff_bler: BLER training periods; csi: CSI matrices for conv_csi (38.901 CDL/UMi, ray "
                        "tracing, or a scenario's own channel); deeprx: link-level slots (received grid, channel, coded bits) for the neural receiver")
    d.add_argument("--config", required=True, help="data config YAML (e.g. scenarios/training/ff_bler_tdl_a30.yaml, "
                                                   "scenarios/training/csi_cdl_c_32x32.yaml, "
                                                   "scenarios/training/deeprx_tiny.yaml)")
    d.add_argument("--out", required=True, help="output Parquet file (ff_bler) or folder of shards (csi, deeprx)")
    d.add_argument("--workers", type=int, default=1, help="deeprx only: processes drawing shards in parallel")
    _threads_argument(d)
    d.set_defaults(func=cmd_data)

    t = sub.add_parser("train", help="train a model offline and write a checkpoint")
    t.add_argument("model", choices=["ff_bler", "mlp_bler", "deeprx", "conv_csi"],
                   help="ff_bler: LightTune's FF predictor; mlp_bler: the offline backprop baseline; "
                        "deeprx: the neural receiver; conv_csi: the CSI codec (rate-distortion training)")
    t.add_argument("--data", required=True, help="Parquet from `airtune data ff_bler` (both BLER models read it); "
                                                 "deeprx / conv_csi: a folder from `airtune data deeprx / csi`")
    t.add_argument("--out", required=True, help="checkpoint JSON (weights go next to it as .npz)")
    t.add_argument("--epochs", type=int, default=None, help="default 30 (ff_bler), 250 (mlp_bler)")
    t.add_argument("--lr", type=float, default=None, help="default 0.003 (ff_bler), 0.001 (mlp_bler, deeprx)")
    t.add_argument("--seed", type=int, default=0)
    both = t.add_argument_group("deeprx and conv_csi")
    both.add_argument("--steps", type=int, default=None, help="Adam steps (default 2000 deeprx, 1000 conv_csi)")
    both.add_argument("--batch-size", type=int, default=None, help="default 16 (deeprx), 32 (conv_csi)")
    cc = t.add_argument_group("conv_csi only")
    cc.add_argument("--lmbda", type=float, default=300.0, help="rate-distortion weight lambda per CSI dimension")
    cc.add_argument("--filters", type=int, default=64, help="convolution filters")
    rx = t.add_argument_group("deeprx only")
    rx.add_argument("--preset", choices=["small", "paper"], default="small")
    rx.add_argument("--samples", type=int, default=None, help="training samples (default: all but the held-out 10%%)")
    rx.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                    help="cosine: decay to 5%% of --lr over the steps")
    rx.add_argument("--init", default=None, help="checkpoint to continue training from (same preset)")
    ff = t.add_argument_group("ff_bler only")
    ff.add_argument("--loss", choices=["quadratic", "softplus"], default="quadratic")
    ff.add_argument("--sizes", default="23,32,32", help="layer sizes, input first")
    ff.add_argument("--threshold", type=float, default=9.0)
    ff.add_argument("--label-encoding", choices=["scalar", "onehot"], default="onehot")
    ff.add_argument("--goodness", choices=["neuron", "layer"], default="layer")
    ff.add_argument("--normalize-hidden", action=argparse.BooleanOptionalAction, default=False)
    _threads_argument(t)
    t.set_defaults(func=cmd_train)

    from simulator.sweep.command import add_sweep_parser

    add_sweep_parser(sub)
    rp = sub.add_parser("report", help="self-contained HTML report of a run or sweep folder (prints its path)")
    rp.add_argument("path", metavar="RUN_OR_SWEEP", help="a run folder (manifest.json) or sweep folder (sweep.json)")
    rp.add_argument("--out", help="HTML file (default: RUN_OR_SWEEP/report.html; figures next to it)")
    rp.set_defaults(func=cmd_report)

    from simulator.studies.experiment import add_experiment_parser

    add_experiment_parser(sub)
    return p


TF_COMMANDS = ("run", "data", "train", "experiment")    # the commands that load TensorFlow in this process


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet.set_verbose(args.verbose)
    args.command_line = " ".join(["airtune", *(sys.argv[1:] if argv is None else argv)])    # for training records
    if hasattr(args, "threads"):
        try:
            limit_threads(threads_setting(args.threads))
        except ValueError as exc:
            _err(str(exc))
            return EXIT_INPUT
    if args.command in TF_COMMANDS:      # before anything imports it: its start-up lines stay off the terminal
        status = StatusLine(sys.stderr.isatty())
        status("loading TensorFlow")
        quiet.load_tensorflow()
        status.done()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
