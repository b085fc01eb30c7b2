"""Targeted fine-tuning study (seeds/000 Sec. 4, Table 1, Fig. 3): for a trained DeepRx checkpoint,
how much of the BER gap to the genie-aided receiver do a few steps on influence-chosen training
samples close on the worst held-out slots, against random samples and gradient ascent?

    python -m simulator.studies.deeprx_targeted --checkpoint models/checkpoints/deeprx_small_20k.json \\
        --out scenarios/experiments/deeprx [--seeds 0 1] [--targets 5] [--pool 0] [--noise-draws 8]

Per seed s (``--seeds``):
  evaluation slots  a chunk of ``--eval-slots`` of the checkpoint's held-out slots (chunk s of one
                    fixed permutation, so seeds see disjoint slots and therefore different targets)
  targets           ``select_targets``: the ``--targets`` largest relative BER gaps (eq. 9) of
                    DeepRx to the chain's genie LMMSE with BER_genie >= ``--min-genie-ber`` (1e-3)
  Hessian subset    ``--hessian-subset`` training slots drawn with seed s; Arnoldi start vector seed s
  pool              a random subset of ``--pool`` (default 4096) training slots (seed s), or the whole
                    training part (``--pool 0``). On 2 shared CPU cores a pool slot costs ~10 ms
                    (its per-sample gradient), an HVP on 32 slots ~1 s: 4096 keeps a seed of the
                    default study near 10 minutes; the 18k training slots of deeprx_small would
                    add ~4 minutes per seed
Per target and variant (``VARIANTS``: influence with classic / theta-relative / l-relative scores
and BCE / soft-BER target losses, random (``--random-draws`` draws), gradient ascent on the most
harmful; each with plain gradient descent and, as extra rows, with Adam), ``--steps`` steps at
``--lr`` on ``--num-samples`` pool samples, then BER again:
  *_slot     the target slot itself (the sample the influence was computed on, same noise)
  *_channel  the target's channel, payload and SNR with ``--noise-draws`` fresh noise draws
             (errors / bits pooled over the draws; before and after use the same draws)
  *_general mean BER over ``--general-slots`` other held-out slots (the side effect)
gap reduction = 1 - gap_after / gap_before (in %; positive: closer to the genie).
Multi-target: one fine-tuning for all targets of a seed together (scores summed), measured on
each. Gap over fine-tuning steps 0..``--curve-steps`` for influence (l-relative, BCE) and random
(one draw per target), with both optimizers.

Output in ``--out``: results.csv (one row per seed, target, variant, optimizer, draw),
curve.csv (one row per seed, target, variant, optimizer, draw, step), targets.csv,
settings.json, and (``analysis.deeprx``) RESULTS.md with the tables, gap_vs_steps.png; a
FINDINGS.md in ``--out`` is inlined into RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.deeprx import write_results
from models.checkpoint import read_checkpoint_config
from models.deeprx.data import PER_SHARD, load_dataset, read_description, subset, to_batch
from simulator.datagen.deeprx import DeepRxDataConfig, chain, data_config_of, reference_llrs

# (label, TargetedConfig fields) of the single-target variants; random is drawn --random-draws times
VARIANTS = [
    ("influence/classic/bce", dict(variant="influence", score="classic", loss="bce")),
    ("influence/theta_relative/bce", dict(variant="influence", score="theta_relative", loss="bce")),
    ("influence/l_relative/bce", dict(variant="influence", score="l_relative", loss="bce")),
    ("influence/classic/ber", dict(variant="influence", score="classic", loss="ber")),
    ("influence/theta_relative/ber", dict(variant="influence", score="theta_relative", loss="ber")),
    ("influence/l_relative/ber", dict(variant="influence", score="l_relative", loss="ber")),
    ("random", dict(variant="random")),
    ("gradient_ascent/l_relative/bce", dict(variant="gradient_ascent", score="l_relative", loss="bce")),
]
ADAM_VARIANTS = ("influence/l_relative/bce", "random", "gradient_ascent/l_relative/bce")
CURVE_VARIANTS = ("influence/l_relative/bce", "random")
MULTI_VARIANTS = ("influence/l_relative/bce", "random")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- slots: bits, genie BER and fresh noise ------------------------------------------------------------------
def transmitted_grid(data_cfg, arrays: dict) -> np.ndarray:
    """The transmitted resource grids x [n, 14, sc] complex64 of dataset samples, rebuilt from their
    coded bits with the chain's own mapper, layer mapper and resource-grid mapper (DMRS included),
    so ``y = h x + sqrt(no) w`` can be drawn again with fresh noise w."""
    import tensorflow as tf

    from models.deeprx.model import grid_to_coded       # lazy (TensorFlow), as in run_study

    n, _, num_sym, num_sc = arrays["y"].shape
    x = np.zeros((n, num_sym, num_sc), np.complex64)
    for mcs in np.unique(arrays["mcs"]):
        ch = chain(data_cfg, int(mcs))
        rows = np.flatnonzero(arrays["mcs"] == mcs)
        c = grid_to_coded(tf.constant(arrays["bits"][rows], tf.float32), arrays["data_re"], ch.num_bits_per_symbol)
        x[rows] = ch.rg_mapper(ch.layer_mapper(ch.mapper(c[:, None, :]))).numpy()[:, 0, 0]
    return x


def with_fresh_noise(data_cfg, arrays: dict, num_draws: int, seed: int) -> dict:
    """Every sample repeated ``num_draws`` times (sample-major) with y redrawn as h x + sqrt(no) w,
    w ~ CN(0, 1) from ``default_rng([seed, index])``; everything else copied."""
    x = transmitted_grid(data_cfg, arrays)
    n, a, num_sym, num_sc = arrays["y"].shape
    out = {k: (v if k in PER_SHARD else np.repeat(v, num_draws, axis=0)) for k, v in arrays.items()}
    y = np.zeros((n * num_draws, a, num_sym, num_sc), np.complex64)
    for j in range(n):
        rng = np.random.default_rng([seed, int(arrays["index"][j])])
        w = (rng.standard_normal((num_draws, a, num_sym, num_sc))
             + 1j * rng.standard_normal((num_draws, a, num_sym, num_sc))) * np.sqrt(0.5)
        h = arrays["h"][j][:, None, :]                                         # [ant, 1, sc]
        y[j * num_draws:(j + 1) * num_draws] = h * x[j] + np.sqrt(arrays["no"][j]) * w
    out["y"] = y
    return out


def bit_errors(llr: np.ndarray, batch: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per sample (bit errors, bits) of hard decisions llr > 0 over the batch's mask."""
    bits, mask = np.asarray(batch["bits"]) > 0, np.asarray(batch["mask"]) > 0
    err = ((llr > 0) != bits) & mask
    return err.sum(axis=(1, 2, 3)), mask.sum(axis=(1, 2, 3))


def genie_errors(data_cfg, arrays: dict, batch: dict, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per sample (bit errors, bits) of the chain's genie LMMSE receiver."""
    width = int(batch["bits"].shape[-1])
    e, b = [], []
    n = len(arrays["index"])
    for a in range(0, n, chunk):
        sub = subset(arrays, slice(a, a + chunk))
        llr = reference_llrs(data_cfg, sub, "genie_lmmse")
        llr = np.pad(llr, [(0, 0)] * 3 + [(0, width - llr.shape[-1])])
        ei, bi = bit_errors(llr, {k: v[a:a + chunk] for k, v in batch.items()})
        e.append(ei)
        b.append(bi)
    return np.concatenate(e), np.concatenate(b)


def model_errors(tuner, weights, batch: dict, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per sample (bit errors, bits) of DeepRx at ``weights``."""
    import tensorflow as tf

    params = [tf.constant(w) for w in weights]
    n = int(batch["x"].shape[0])
    e, b = [], []
    for a in range(0, n, chunk):
        part = {k: v[a:a + chunk] for k, v in batch.items()}
        ei, bi = bit_errors(tuner.model.forward(part["x"], params).numpy(), part)
        e.append(ei)
        b.append(bi)
    return np.concatenate(e), np.concatenate(b)


# -- the study -----------------------------------------------------------------------------------------------
class _Target:
    """One target: its slot batch, its fresh-noise batch and the genie BERs on both."""

    def __init__(self, tuner, data_cfg, arrays: dict, row: int, num_draws: int, seed: int, width: int, dtype: str):
        self.row = row
        one = subset(arrays, [row])
        self.slot = to_batch(one, width, dtype)
        fresh = with_fresh_noise(data_cfg, one, num_draws, seed)
        self.channel = to_batch(fresh, width, dtype)
        e, b = genie_errors(data_cfg, one, self.slot)
        self.genie_slot = e.sum() / b.sum()
        e, b = genie_errors(data_cfg, fresh, self.channel)
        self.genie_channel = e.sum() / b.sum()

    def ber(self, tuner, weights) -> tuple[float, float]:
        e, b = model_errors(tuner, weights, self.slot)
        ec, bc = model_errors(tuner, weights, self.channel)
        return float(e.sum() / b.sum()), float(ec.sum() / bc.sum())


def run_study(checkpoint, out, data_dir=None, seeds=(0, 1), num_targets: int = 5, eval_slots: int | None = None,
              pool_size: int = 4096, hessian_subset: int = 32, top_k: int = 40, num_samples: int = 50, steps: int = 3,
              learning_rate: float = 0.002, noise_draws: int = 8, random_draws: int = 3, curve_steps: int = 20,
              general_slots: int = 128, min_genie_ber: float = 1e-3, command: str = "") -> dict[str, pd.DataFrame]:
    """Run the study (module docstring) and write its CSVs and settings.json into ``out``."""
    # lazy: these import TensorFlow, which --tables-only does not need
    from models.deeprx.influence import InfluenceConfig
    from models.deeprx.model import DeepRx
    from models.deeprx.targeted import TargetedConfig, TargetedFineTuner, relative_ber_gap, select_targets

    t_start = time.perf_counter()
    checkpoint = Path(checkpoint)
    ckpt = read_checkpoint_config(checkpoint, "deeprx")
    training = ckpt.training
    if training is None:
        raise ValueError(f"{checkpoint}: no training record (train it with `airtune train deeprx`)")
    data_dir = Path(data_dir or training["data"])
    try:
        desc = read_description(data_dir)
        data_cfg = data_config_of(desc)
    except ValueError as exc:
        raise ValueError(f"--data: {exc}") from None
    if data_cfg.model_dump() != DeepRxDataConfig.model_validate(training["data_config"]).model_dump():
        raise ValueError(f"--data: {data_dir} is not the dataset {checkpoint} was trained on")
    trained_on = training.get("data_format_version", 1)          # not recorded before version 2
    if trained_on != desc["format_version"]:
        _log(f"note: {checkpoint} was trained on format-{trained_on} samples and {data_dir} holds format-"
             f"{desc['format_version']} ones, other draws of the same config: the train and held-out rows are "
             f"both unseen by the model, and the numbers are not the ones of its original pool")
    model = DeepRx.load(checkpoint)
    width, dtype = model.config.max_bits_per_symbol, model.config.dtype
    _log(f"loading {data_dir}")
    arrays = load_dataset(data_dir)
    pos = {int(i): r for r, i in enumerate(arrays["index"])}
    train_rows = np.array([pos[i] for i in range(*training["train_index"])])
    hold_rows = np.array([pos[i] for i in range(*training["holdout_index"])])
    seeds = list(seeds)
    eval_slots = eval_slots or len(hold_rows) // len(seeds)
    if min(seeds) < 0 or eval_slots * (max(seeds) + 1) > len(hold_rows):
        raise ValueError(f"--eval-slots {eval_slots}: seed s takes held-out chunk s (slots s * {eval_slots} onwards), "
                         f"seeds {seeds} need {eval_slots * (max(seeds) + 1)}, there are {len(hold_rows)}")
    perm = np.random.default_rng(12345).permutation(hold_rows)
    weights0 = [v.numpy() for v in model.params]
    infl = {**asdict(InfluenceConfig(top_k=top_k)), "seed": "the study seed"}
    settings = dict(checkpoint=str(checkpoint), checkpoint_sha256=ckpt.weights_sha256,
                    checkpoint_holdout_ber=training.get("holdout_ber"), data=str(data_dir), seeds=seeds, num_targets=num_targets,
                    eval_slots=eval_slots, pool_size=min(pool_size or len(train_rows), len(train_rows)), hessian_subset=hessian_subset,
                    num_samples=num_samples, steps=steps, learning_rate=learning_rate, noise_draws=noise_draws,
                    random_draws=random_draws, curve_steps=curve_steps, general_slots=general_slots,
                    influence=infl, min_genie_ber=min_genie_ber, num_train=len(train_rows), num_holdout=len(hold_rows),
                    command=command)
    results, curve, targets_rows = [], [], []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        rng = np.random.default_rng(s)
        ev = np.sort(perm[s * eval_slots:(s + 1) * eval_slots])
        _log(f"seed {s}: DeepRx and genie BER on {len(ev)} held-out slots")
        ev_arrays = subset(arrays, ev)
        ev_batch = to_batch(ev_arrays, width, dtype)
        e_g, b_g = genie_errors(data_cfg, ev_arrays, ev_batch)
        # influence config with this seed's Arnoldi start
        infl_s = InfluenceConfig(top_k=top_k, seed=s)
        pool_rows = (train_rows if not pool_size or pool_size >= len(train_rows)
                     else np.sort(rng.choice(train_rows, pool_size, replace=False)))
        hess_rows = np.sort(rng.choice(train_rows, hessian_subset, replace=False))
        t0 = time.perf_counter()
        _log(f"seed {s}: Arnoldi (k = {top_k}, {infl_s.iterations(model.num_parameters())} HVPs on "
             f"{hessian_subset} slots) and projecting a pool of {len(pool_rows)} training slots")
        tuner = TargetedFineTuner(model, weights0, to_batch(arrays, width, dtype, rows=pool_rows),
                                  to_batch(arrays, width, dtype, rows=hess_rows), infl_s,
                                  pool_index=arrays["index"][pool_rows])
        build_s = time.perf_counter() - t0
        _log(f"seed {s}: tuner built in {build_s:.0f} s ({tuner.num_eigen} eigenpairs kept)")
        e_r, b_r = model_errors(tuner, weights0, ev_batch)
        ber_rx, ber_genie = e_r / b_r, e_g / b_g
        picked = select_targets(ber_rx, ber_genie, num_targets, min_genie_ber)
        if picked.size < num_targets:
            _log(f"seed {s}: only {picked.size} slots have BER_genie >= {min_genie_ber}")
        others = np.setdiff1d(np.arange(len(ev)), picked)
        general = np.sort(rng.choice(others, min(general_slots, others.size), replace=False))
        gen_batch = {k: tf_gather(v, general) for k, v in ev_batch.items()}

        def general_ber(w):
            if general.size == 0:
                return float("nan")
            e, b = model_errors(tuner, w, gen_batch)
            return float(np.mean(e / b))

        gen0 = general_ber(weights0)
        tgts = [_Target(tuner, data_cfg, arrays, int(ev[j]), noise_draws, s, width, dtype) for j in picked]
        base = {}
        for j, t in zip(picked, tgts):
            rs, rc = t.ber(tuner, weights0)
            base[t.row] = (rs, rc)
            targets_rows.append(dict(seed=s, target=int(arrays["index"][t.row]), snr_db=float(arrays["snr_db"][t.row]),
                                     mcs=int(arrays["mcs"][t.row]), channel=data_cfg.channels[int(arrays["channel"][t.row])],
                                     ber_rx_eval=float(ber_rx[j]), ber_genie_eval=float(ber_genie[j]),
                                     gap_eval=float(relative_ber_gap(ber_rx[j], ber_genie[j])),
                                     ber_rx_slot=rs, ber_genie_slot=float(t.genie_slot), ber_rx_channel=rc,
                                     ber_genie_channel=float(t.genie_channel), ber_general=gen0,
                                     eval_mean_ber_rx=float(np.mean(ber_rx)), eval_mean_ber_genie=float(np.mean(ber_genie)),
                                     tuner_build_s=build_s, num_eigen=tuner.num_eigen))

        def record(t, label, opt, draw, res, multi=False):
            rs0, rc0 = base[t.row]
            rs, rc = t.ber(tuner, res.weights)
            g0s, g0c = relative_ber_gap(rs0, t.genie_slot), relative_ber_gap(rc0, t.genie_channel)
            gs, gc = relative_ber_gap(rs, t.genie_slot), relative_ber_gap(rc, t.genie_channel)
            results.append(dict(seed=s, target=int(arrays["index"][t.row]), variant=("multi:" if multi else "") + label,
                                optimizer=opt, draw=draw, ber_rx_slot_before=rs0, ber_rx_slot_after=rs,
                                ber_genie_slot=float(t.genie_slot), gap_slot_before=float(g0s), gap_slot_after=float(gs),
                                reduction_slot=float(100 * (1 - gs / g0s)),
                                ber_rx_channel_before=rc0, ber_rx_channel_after=rc,
                                ber_genie_channel=float(t.genie_channel), gap_channel_before=float(g0c),
                                gap_channel_after=float(gc), reduction_channel=float(100 * (1 - gc / g0c)),
                                ber_general_before=gen0, ber_general_after=general_ber(res.weights),
                                target_loss_before=res.target_loss_before, target_loss_after=res.target_loss_after,
                                chosen=" ".join(str(i) for i in res.chosen_index[:10])))

        for k, t in enumerate(tgts):
            tb = t.slot
            for label, fields in VARIANTS:
                for opt in ("sgd", "adam"):
                    if opt == "adam" and label not in ADAM_VARIANTS:
                        continue
                    c = TargetedConfig(**fields, num_samples=num_samples, steps=steps, learning_rate=learning_rate,
                                       optimizer=opt, influence=infl_s)
                    for d in range(random_draws if label == "random" else 1):
                        record(t, label, opt, d, tuner.run(tb, c, rng))
            for label in CURVE_VARIANTS:
                fields = dict(VARIANTS)[label]
                for opt in ("sgd", "adam"):
                    c = TargetedConfig(**fields, num_samples=num_samples, steps=curve_steps,
                                       learning_rate=learning_rate, optimizer=opt, influence=infl_s)
                    for d in range(1):                      # one random draw per target (CPU time)
                        res = tuner.run(tb, c, rng, keep_trajectory=True)
                        rs0, rc0 = base[t.row]
                        g0s, g0c = relative_ber_gap(rs0, t.genie_slot), relative_ber_gap(rc0, t.genie_channel)
                        for step, w in enumerate(res.trajectory):
                            rs, rc = t.ber(tuner, w)
                            gs, gc = relative_ber_gap(rs, t.genie_slot), relative_ber_gap(rc, t.genie_channel)
                            curve.append(dict(seed=s, target=int(arrays["index"][t.row]), variant=label, optimizer=opt,
                                              draw=d, step=step, gap_slot=float(gs), gap_channel=float(gc),
                                              reduction_slot=float(100 * (1 - gs / g0s)),
                                              reduction_channel=float(100 * (1 - gc / g0c))))
            _log(f"seed {s}: target {k + 1}/{len(tgts)} (slot {int(arrays['index'][t.row])}) done, "
                 f"{time.perf_counter() - t_start:.0f} s so far")
        if len(tgts) > 1:
            import tensorflow as tf

            multi = {k: tf.concat([t.slot[k] for t in tgts], 0) for k in tgts[0].slot}
            for label in MULTI_VARIANTS:
                fields = dict(VARIANTS)[label]
                for opt in ("sgd", "adam"):
                    c = TargetedConfig(**fields, num_samples=num_samples, steps=steps, learning_rate=learning_rate,
                                       optimizer=opt, influence=infl_s)
                    for d in range(random_draws if label == "random" else 1):
                        res = tuner.run(multi, c, rng)
                        for t in tgts:
                            record(t, label, opt, d, res, multi=True)
        # written after every seed, so an interrupted study keeps the seeds it finished
        frames = {"results": pd.DataFrame(results), "curve": pd.DataFrame(curve), "targets": pd.DataFrame(targets_rows)}
        for name, df in frames.items():
            df.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
        settings["seeds_done"] = settings.get("seeds_done", []) + [s]
        settings["wall_s"] = round(time.perf_counter() - t_start, 1)
        (out / "settings.json").write_text(json.dumps(settings, indent=2))
        _log(f"seed {s} done ({time.perf_counter() - t_start:.0f} s)")
    return frames


def tf_gather(v, rows):
    import tensorflow as tf

    return tf.gather(v, np.asarray(rows, np.int64))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulator.studies.deeprx_targeted", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a DeepRx checkpoint from `airtune train deeprx`")
    p.add_argument("--data", help="its dataset folder (default: the one recorded in the checkpoint)")
    p.add_argument("--out", default="scenarios/experiments/deeprx", help="folder for the CSVs, RESULTS.md and PNG")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--targets", type=int, default=5, help="targets per seed")
    p.add_argument("--eval-slots", type=int, default=None,
                   help="held-out slots per seed (default: the held-out part split between the seeds)")
    p.add_argument("--pool", type=int, default=4096,
                   help="pool: a random subset of this many training slots per seed (0: the whole training part)")
    p.add_argument("--hessian-subset", type=int, default=32, help="training slots whose mean loss defines H")
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--num-samples", type=int, default=50)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--noise-draws", type=int, default=8)
    p.add_argument("--random-draws", type=int, default=3)
    p.add_argument("--curve-steps", type=int, default=20)
    p.add_argument("--general-slots", type=int, default=128)
    p.add_argument("--min-genie-ber", type=float, default=1e-3, help="targets need at least this genie BER (paper: 1e-3)")
    p.add_argument("--tables-only", action="store_true", help="do not run; rebuild RESULTS.md and the PNG from the CSVs")
    args = p.parse_args(argv)
    command = "python -m simulator.studies.deeprx_targeted " + " ".join(argv if argv is not None else sys.argv[1:])
    out = Path(args.out)
    try:
        if not args.tables_only:
            run_study(args.checkpoint, out, args.data, args.seeds, args.targets, args.eval_slots, args.pool,
                      args.hessian_subset, args.top_k, args.num_samples, args.steps, args.lr, args.noise_draws,
                      args.random_draws, args.curve_steps, args.general_slots, args.min_genie_ber, command)
        path = write_results(out, command)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
