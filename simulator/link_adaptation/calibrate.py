"""Regenerate the PDSCH BLER tables of the abstraction around each MCS's waterfall (calibration).

Sionna 1.2.2 ships AWGN BLER tables sampled every ~1.8 dB for code blocks of at most
2,000 bits; interpolating them puts the 10 % BLER point of some MCS 0.5-0.8 dB off the
LDPC chain's (the link_level backend matches Sionna's own ``CodedAWGNChannelNR`` within
~0.1 dB), and larger code blocks are extrapolated.

Here every (MCS, code-block size) is re-simulated with ``CodedAWGNChannelNR`` (the same
5G LDPC and QAM as the link_level backend): SNR probes placed by bisection on the 10 %
point, then a probit waterfall ``BLER(snr) = Q((snr - mu) / sigma)`` fitted to every
decoded block by maximum likelihood, written on a 0.1 dB grid in Sionna's table format
and loaded on top of Sionna's defaults (``simulator/link_adaptation/tables.py``). Fitting
a curve to all blocks, instead of estimating each grid point separately, needs ~10x fewer
LDPC decodings for the same accuracy of the 10 % point, which is what makes this feasible
on a CPU (a 8,448-bit block takes ~30 ms to decode here).

    python -m simulator.link_adaptation.calibrate --mcs-table 1 --out simulator/data/bler_tables/PDSCH_table1.json
"""
from __future__ import annotations

import argparse
import json
import math
import time
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm

PDSCH = 1
CB_SIZES = (500, 1500, 3840, 8448)
GRID_STEP_DB = 0.1


def calibrated_table_files() -> list[str]:
    """Regenerated tables shipped with airtune (loaded after Sionna's, replacing their MCS entries)."""
    folder = Path(str(resources.files("simulator").joinpath("data/bler_tables")))
    return sorted(str(p) for p in folder.glob("*.json")) if folder.is_dir() else []


def fit_probit(snr_db: np.ndarray, n_err: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """ML fit of BLER = Q((snr - mu) / sigma) to block-error counts -> (mu, sigma)."""
    def nll(p):
        mu, log_s = p
        q = np.clip(norm.sf((snr_db - mu) / math.exp(log_s)), 1e-12, 1 - 1e-12)
        return -np.sum(n_err * np.log(q) + (n - n_err) * np.log1p(-q))

    mu0 = float(np.interp(0.5, (n_err / n)[::-1], snr_db[::-1])) if len(snr_db) > 1 else float(snr_db[0])
    res = minimize(nll, [mu0, math.log(0.3)], method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6})
    return float(res.x[0]), float(math.exp(res.x[1]))


def _measure(num_bits_per_symbol: int, coderate: float, cbs: int, batch: int, verbose: bool):
    """Closure: snr_db -> number of block errors out of ``batch`` (None if the code is invalid)."""
    import tensorflow as tf
    from sionna.phy.nr.utils import CodedAWGNChannelNR

    ch = CodedAWGNChannelNR(num_bits_per_symbol=num_bits_per_symbol, num_info_bits=cbs, target_coderate=coderate)
    ebno_offset = 10 * math.log10(num_bits_per_symbol * coderate)

    @tf.function
    def run(ebno_db):
        b, b_hat = ch(batch, ebno_db)
        return tf.reduce_sum(tf.cast(tf.reduce_any(tf.not_equal(b, b_hat), axis=-1), tf.int32))

    try:
        run(tf.constant(0.0))
    except ValueError as exc:               # e.g. a code rate the 5G base graph cannot carry
        if verbose:
            print(f"  CBS {cbs}: skipped ({str(exc).splitlines()[0][:80]})")
        return None
    return lambda snr_db: int(run(tf.constant(snr_db - ebno_offset, tf.float32)))


def waterfall(num_bits_per_symbol: int, coderate: float, cbs: int, snr_guess_db: float, batch: int = 100,
              probes: int = 10, verbose: bool = False):
    """(mu, sigma, probes) of the fitted waterfall of one (modulation, code rate, CBS)."""
    measure = _measure(num_bits_per_symbol, coderate, cbs, batch, verbose)
    if measure is None:
        return None
    lo, hi = snr_guess_db - 4.0, snr_guess_db + 4.0
    pts = []
    # widen until the 10 % point is bracketed, then bisect on it
    while True:
        e_lo, e_hi = measure(lo), measure(hi)
        pts += [(lo, e_lo), (hi, e_hi)]
        if e_lo / batch < 0.1 and lo > -15:
            lo -= 4.0
        elif e_hi / batch > 0.1 and hi < 40:
            hi += 4.0
        else:
            break
    for _ in range(probes):
        mid = 0.5 * (lo + hi)
        e = measure(mid)
        pts.append((mid, e))
        if e / batch > 0.1:
            lo = mid
        else:
            hi = mid
    snr = np.array([p[0] for p in pts])
    err = np.array([p[1] for p in pts], dtype=float)
    mu, sigma = fit_probit(snr, err, np.full(len(pts), batch, dtype=float))
    return mu, sigma, pts


def generate(mcs_table: int, out: Path, mcs_list: list[int] | None = None, batch: int = 100,
             probes: int = 10) -> dict:
    from sionna.phy.nr.utils import decode_mcs_index
    from sionna.sys import PHYAbstraction

    coarse = PHYAbstraction().bler_table["category"][PDSCH]["index"][mcs_table]["MCS"]
    mcs_list = sorted(coarse) if mcs_list is None else mcs_list
    result: dict = {"category": {str(PDSCH): {"index": {str(mcs_table): {"MCS": {}}}}},
                    "_source": "airtune calibrate: probit fit to CodedAWGNChannelNR block errors", "_fits": {}}
    t0 = time.time()
    for mcs in mcs_list:
        q, r = decode_mcs_index(mcs, mcs_table, is_pusch=False)
        q, r = int(q), float(r)
        guess = 10 * math.log10(2 ** (q * r) - 1) + 1.0           # Shannon limit + 1 dB
        fits = {}
        for cbs in CB_SIZES:
            res = waterfall(q, r, cbs, guess, batch, probes)
            if res is not None:
                fits[cbs] = res[:2]
                guess = res[0]
        if not fits:
            continue
        mus = [m for m, _ in fits.values()]
        grid = np.round(np.arange(min(mus) - 4.0, max(mus) + 4.0 + 1e-9, GRID_STEP_DB), 2)
        entry = {"SNR_db": grid.tolist(),
                 "CBS": {str(c): {"BLER": norm.sf((grid - m) / s).round(6).tolist()} for c, (m, s) in fits.items()}}
        result["category"][str(PDSCH)]["index"][str(mcs_table)]["MCS"][str(mcs)] = entry
        result["_fits"][str(mcs)] = {str(c): [round(m, 3), round(s, 4)] for c, (m, s) in fits.items()}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result))
        print(f"MCS {mcs}: " + ", ".join(f"CBS {c}: 10% at {m + s * norm.isf(0.1):.2f} dB" for c, (m, s) in
                                        fits.items()) + f" ({time.time() - t0:.0f} s)", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mcs-table", type=int, default=1, choices=[1, 2])
    p.add_argument("--mcs", type=int, nargs="*", help="only these MCS indices")
    p.add_argument("--batch", type=int, default=100, help="code blocks per SNR probe")
    p.add_argument("--probes", type=int, default=10, help="bisection probes per code-block size")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    generate(args.mcs_table, args.out, args.mcs, args.batch, args.probes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
