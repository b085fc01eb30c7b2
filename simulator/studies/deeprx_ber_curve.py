"""Uncoded BER vs SNR of DeepRx, LS+LMMSE and genie LMMSE on held-out channels of the link-level chain.

    python -m simulator.studies.deeprx_ber_curve --checkpoint rx.json --out ber.csv [--png ber.png]
        [--snr-db -5 0 5 10 15 20 25] [--samples 64] [--data-config scenarios/training/deeprx_tiny.yaml]

Slots come from ``simulator.datagen.deeprx.draw_samples`` (the chain's transmitter, the simulator's TDL/CDL
channel, ``y = h x + sqrt(no) w``) with the data config of the checkpoint's training (its
``training.data_config``) unless ``--data-config`` is given, the SNR range replaced by each
point. Held out: the sample indices start at ``--first-index`` (default 10^9), far beyond any
training set, and the same indices are used at every SNR, so each point sees the same
channels, MCS and noise draw (scaled). LS+LMMSE and genie LMMSE are the chain's own receivers
on the same received grids (``simulator.datagen.deeprx.reference_llrs``).

Output (CSV): one row per (snr_db, mcs, receiver) with ``ber`` = bit errors / bits over the
data REs and the valid bits of each sample's modulation, ``num_bits``, ``num_samples``; rows
with ``mcs = -1`` pool all MCS (bit-weighted). ``--png`` plots the pooled rows.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from models.checkpoint import read_checkpoint_config
from simulator.datagen.deeprx import DeepRxDataConfig, draw_samples, load_data_config, reference_llrs

RECEIVERS = ("deeprx", "lmmse", "genie_lmmse")
HELD_OUT_FIRST_INDEX = 10 ** 9


def _errors(llr: np.ndarray, bits: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample (bit errors, bits) of hard decisions ``llr > 0`` over the masked entries."""
    err = ((llr > 0) != (bits > 0)) & mask
    return err.sum(axis=(1, 2, 3)), mask.sum(axis=(1, 2, 3))


def ber_curve(model, data_cfg, snr_db: Sequence[float], num_samples: int = 64,
              first_index: int = HELD_OUT_FIRST_INDEX, chunk: int = 32) -> pd.DataFrame:
    """BER of ``model`` (a DeepRx) and of the chain's LS+LMMSE and genie LMMSE receivers at each SNR
    (see the module docstring for the rows)."""
    from models.deeprx.model import loss_mask          # lazy (TensorFlow), as in main

    width = model.config.max_bits_per_symbol
    indices = np.arange(first_index, first_index + num_samples)
    rows = []
    for snr in snr_db:
        cfg = data_cfg.model_copy(update={"snr_db": (float(snr), float(snr))})
        totals: dict[tuple[int, str], list[int]] = {}
        for a in range(0, num_samples, chunk):
            arr = draw_samples(cfg, indices[a:a + chunk])
            n = len(arr["index"])
            if arr["bits"].shape[-1] > width:
                raise ValueError(f"the data config needs {arr['bits'].shape[-1]} LLRs per RE, the model gives {width}")
            bits = np.pad(arr["bits"], [(0, 0)] * 3 + [(0, width - arr["bits"].shape[-1])])
            mask = loss_mask(np.broadcast_to(arr["data_re"], (n, *arr["data_re"].shape)), arr["bits_per_symbol"],
                             width).numpy() > 0
            pilots = np.broadcast_to(arr["pilots"], (n, *arr["pilots"].shape))
            llrs = {"deeprx": model.receive(arr["y"], pilots, arr["no"]).numpy()}
            for rx in ("lmmse", "genie_lmmse"):
                ref = reference_llrs(cfg, arr, rx)
                llrs[rx] = np.pad(ref, [(0, 0)] * 3 + [(0, width - ref.shape[-1])])
            for rx, llr in llrs.items():
                e, b = _errors(llr, bits, mask)
                for mcs in (-1, *np.unique(arr["mcs"]).tolist()):
                    sel = np.ones(n, bool) if mcs == -1 else arr["mcs"] == mcs
                    t = totals.setdefault((int(mcs), rx), [0, 0, 0])
                    t[0] += int(e[sel].sum())
                    t[1] += int(b[sel].sum())
                    t[2] += int(sel.sum())
        for (mcs, rx), (e, b, k) in sorted(totals.items()):
            rows.append({"snr_db": float(snr), "mcs": mcs, "receiver": rx, "ber": e / max(b, 1),
                         "num_bits": b, "num_samples": k})
    return pd.DataFrame(rows, columns=["snr_db", "mcs", "receiver", "ber", "num_bits", "num_samples"])


def plot_ber_curve(df: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Semilog BER vs SNR of the pooled rows (``mcs == -1``), one line per receiver."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"deeprx": "DeepRx", "lmmse": "LS+LMMSE", "genie_lmmse": "genie LMMSE"}
    fig, ax = plt.subplots(figsize=(5, 3.6))
    pooled = df[df["mcs"] == -1]
    for rx in RECEIVERS:
        d = pooled[pooled["receiver"] == rx].sort_values("snr_db")
        ax.semilogy(d["snr_db"], d["ber"].clip(lower=1e-6), marker="o", label=labels[rx])
    ax.set_xlabel("SNR per RE (dB)")
    ax.set_ylabel("uncoded BER")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def curve_data_config(checkpoint: str | Path, data_config: str | Path | None = None):
    """The data config the curves are drawn with: ``data_config`` (a YAML) or the checkpoint's training one."""
    if data_config is not None:
        return load_data_config(data_config)
    data = (read_checkpoint_config(checkpoint, "deeprx").training or {}).get("data_config")
    if data is None:
        raise ValueError(f"{checkpoint} records no training data config; pass --data-config")
    return DeepRxDataConfig.model_validate(data)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulator.studies.deeprx_ber_curve", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="deeprx checkpoint JSON")
    p.add_argument("--out", required=True, help="CSV of the curves")
    p.add_argument("--png", help="plot of the pooled curves")
    p.add_argument("--snr-db", type=float, nargs="+", default=[-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0])
    p.add_argument("--samples", type=int, default=64, help="held-out slots per SNR point")
    p.add_argument("--data-config", help="DeepRx data config YAML (default: the checkpoint's training one)")
    p.add_argument("--first-index", type=int, default=HELD_OUT_FIRST_INDEX, help="first held-out sample index")
    args = p.parse_args(argv)
    if args.samples < 1:
        p.error(f"--samples must be >= 1, got {args.samples}")
    from models.deeprx.model import DeepRx             # lazy: TensorFlow only after the arguments are checked

    try:
        data_cfg = curve_data_config(args.checkpoint, args.data_config)
        model = DeepRx.load(args.checkpoint)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    df = ber_curve(model, data_cfg, args.snr_db, args.samples, args.first_index)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    if args.png:
        plot_ber_curve(df, args.png, f"{Path(args.checkpoint).name}, {args.samples} held-out slots per point")
    pooled = df[df["mcs"] == -1].pivot(index="snr_db", columns="receiver", values="ber")
    print(pooled.to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {out} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
