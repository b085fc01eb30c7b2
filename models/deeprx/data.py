"""DeepRx training data from the simulator's own link-level transmitter and fading channel.

A sample is one slot of the PDSCH stand-in of ``simulator/phy/link_level.py`` (its ``Chain``
components, unchanged: ``TBEncoder`` -> QAM ``Mapper`` -> ``LayerMapper`` -> ``ResourceGridMapper``
with the ``PUSCHPilotPattern``) through a 38.901 TDL/CDL channel drawn by the simulator's
``FadingChannel``, with the same received-signal model as the chain:
``y = h x + sqrt(no) w``, h [ant, sc] held over the 14 symbols, no = 10^(-snr_db / 10) per RE
(signal power 1). Each sample draws its channel model/profile, delay spread, SNR and MCS
uniformly from the config's lists and ranges. Doppler does not enter: the chain holds the
channel constant within a slot, so one slot has no time variation to learn.

Reproducible per sample: sample i's payload, noise and draws come from
``numpy.random.default_rng([seed, i])`` and its channel from Sionna seeded with a number drawn
from the same generator, so ``draw_samples(cfg, [i])`` regenerates sample i exactly (influence
names training samples by this ``index``).

Layout of ``out/``: ``description.json`` (config, grid, shards with sha256) and
``shard_00000.npz`` ... with, per sample: ``index`` [n] int64, ``y`` [n, ant, 14, sc] complex64,
``h`` [n, ant, sc] complex64 (true channel, for the genie receiver), ``no`` [n] float32,
``snr_db`` [n] float32, ``mcs`` [n] int16, ``bits_per_symbol`` [n] int16, ``channel`` [n]
int16 (index into config.channels), ``delay_spread_ns`` [n] float32, ``bits`` [n, 14, sc, B]
uint8 (coded, scrambled bits of each data RE, B = the largest modulation order of the config;
zeros beyond a sample's order and on non-data REs); and once per shard ``pilots`` [14, sc]
complex64 (DMRS grid, zero elsewhere) and ``data_re`` [14, sc] bool.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.csi_codec.data import _sha256

DESCRIPTION = "description.json"
NUM_OFDM_SYMBOLS = 14


class DeepRxDataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["deeprx_data"] = Field("deeprx_data", description="marks the YAML as a DeepRx data config")
    num_prbs: int = Field(4, ge=1, le=273, description="bandwidth (12 subcarriers per PRB)")
    subcarrier_spacing_khz: Literal[15, 30] = 30
    carrier_frequency_ghz: float = Field(3.5, gt=0)
    num_dmrs_symbols: int = Field(1, ge=1, le=4, description="single-symbol DMRS per slot")
    num_rx_ant: int = Field(1, ge=1, le=8)
    mcs_table: Literal[1, 2] = 1
    mcs: tuple[int, ...] = Field((5, 12, 20), min_length=1, description="MCS indices drawn uniformly")
    channels: tuple[str, ...] = Field(("tdl:A", "tdl:B", "tdl:C"), min_length=1,
                                      description="'tdl:<profile>' or 'cdl:<profile>', drawn uniformly")
    delay_spread_ns: tuple[float, float] = Field((10.0, 300.0), description="uniform range (fixed-spread "
                                                                            "profiles such as A30 ignore it)")
    snr_db: tuple[float, float] = Field((-5.0, 25.0), description="uniform range of the per-RE SNR")
    num_samples: int = Field(256, ge=1)
    shard_size: int = Field(4096, ge=1, description="samples per shard file")
    seed: int = Field(0, ge=0)

    @field_validator("channels")
    @classmethod
    def _channels(cls, v):
        from simulator.schema import CDL_PROFILES, TDL_PROFILES

        for c in v:
            model, _, profile = c.partition(":")
            valid = {"tdl": TDL_PROFILES, "cdl": CDL_PROFILES}.get(model)
            if valid is None or profile not in valid:
                raise ValueError(f"unknown channel {c!r}; use tdl:<{'|'.join(TDL_PROFILES)}> or "
                                 f"cdl:<{'|'.join(CDL_PROFILES)}>")
        return v

    @model_validator(mode="after")
    def _ranges(self):
        for name in ("delay_spread_ns", "snr_db"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: lower bound {lo} > upper bound {hi}")
        if self.delay_spread_ns[0] <= 0:
            raise ValueError(f"delay_spread_ns must be > 0, got {self.delay_spread_ns}")
        return self


def load_data_config(path: str | Path) -> DeepRxDataConfig:
    """A YAML data config; errors name the field (``field: message`` lines) in a ValueError."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
        return DeepRxDataConfig.model_validate(doc)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise ValueError(f"{path}:\n" + "\n".join(lines)) from None


def coded_to_grid(coded: np.ndarray, data_re: np.ndarray, bits_per_symbol: int, width: int) -> np.ndarray:
    """coded [m, num_data_re * bits_per_symbol] (the chain's coded-bit order) -> [m, 14, sc, width],
    zero off the data REs and beyond ``bits_per_symbol``; the inverse of ``model.grid_to_coded``
    (the ResourceGridMapper fills the data REs in (symbol, subcarrier) row-major order)."""
    grid = np.zeros((coded.shape[0], *data_re.shape, width), coded.dtype)
    grid[:, data_re, :bits_per_symbol] = coded.reshape(coded.shape[0], -1, bits_per_symbol)
    return grid


def _chain(cfg: DeepRxDataConfig, mcs: int):
    from simulator.phy.link_level import ChainKey, get_chain

    return get_chain(ChainKey(num_prbs=cfg.num_prbs, subcarrier_spacing_khz=cfg.subcarrier_spacing_khz,
                              mcs_table=cfg.mcs_table, num_dmrs_symbols=cfg.num_dmrs_symbols,
                              num_ue_ant=cfg.num_rx_ant, receiver="lmmse", mcs=mcs))


def pilot_grid(chain) -> tuple[np.ndarray, np.ndarray]:
    """(pilots [14, sc] complex64, zero off the DMRS REs; data_re [14, sc] bool) of a chain."""
    import tensorflow as tf

    empty = tf.zeros([1, 1, 1, chain.resource_grid.num_data_symbols], tf.complex64)
    pilots = chain.rg_mapper(empty).numpy()[0, 0, 0]
    data_re = np.asarray(chain.resource_grid.pilot_pattern.mask)[0, 0] == 0
    return pilots.astype(np.complex64), data_re


def _channel(cfg: DeepRxDataConfig, which: str, delay_spread_ns: float, seed: int) -> np.ndarray:
    """One slot of the simulator's FadingChannel: h [ant, sc] complex64."""
    from simulator.channel.fading import FadingChannel
    from simulator.schema import FIXED_DELAY_SPREAD_NS, CarrierConfig, ChannelConfig

    model, _, profile = which.partition(":")
    ch_kw = {} if (model == "tdl" and profile in FIXED_DELAY_SPREAD_NS) else {"delay_spread_ns": delay_spread_ns}
    ch_cfg = ChannelConfig(model=model, profile=profile, **ch_kw)
    carrier = CarrierConfig(subcarrier_spacing_khz=cfg.subcarrier_spacing_khz, num_prbs=cfg.num_prbs,
                            carrier_frequency_ghz=cfg.carrier_frequency_ghz)
    return FadingChannel(ch_cfg, carrier, cfg.num_rx_ant, 0.0, np.zeros(1, np.int64), seed).cfr_slot(0)


def draw_samples(cfg: DeepRxDataConfig, indices: Sequence[int]) -> dict[str, np.ndarray]:
    """The samples with these indices (see the module docstring for the arrays)."""
    import tensorflow as tf

    indices = np.asarray(indices, np.int64)
    n, a = len(indices), cfg.num_rx_ant
    chains = {m: _chain(cfg, m) for m in cfg.mcs}
    first = chains[cfg.mcs[0]]
    pilots, data_re = pilot_grid(first)
    for m, ch in chains.items():
        if not np.array_equal(pilot_grid(ch)[0], pilots):
            raise AssertionError(f"MCS {m} has another DMRS grid")           # the grid does not depend on MCS
    num_sc = first.num_subcarriers
    width = max(ch.num_bits_per_symbol for ch in chains.values())
    out = {"index": indices, "y": np.zeros((n, a, NUM_OFDM_SYMBOLS, num_sc), np.complex64),
           "h": np.zeros((n, a, num_sc), np.complex64), "no": np.zeros(n, np.float32),
           "snr_db": np.zeros(n, np.float32), "mcs": np.zeros(n, np.int16),
           "bits_per_symbol": np.zeros(n, np.int16), "channel": np.zeros(n, np.int16),
           "delay_spread_ns": np.zeros(n, np.float32),
           "bits": np.zeros((n, NUM_OFDM_SYMBOLS, num_sc, width), np.uint8),
           "pilots": pilots, "data_re": data_re}
    payload, noise = {}, {}
    for j, i in enumerate(indices):
        rng = np.random.default_rng([cfg.seed, int(i)])
        mcs = cfg.mcs[rng.integers(len(cfg.mcs))]
        c = int(rng.integers(len(cfg.channels)))
        ds = rng.uniform(*cfg.delay_spread_ns)
        snr = rng.uniform(*cfg.snr_db)
        out["h"][j] = _channel(cfg, cfg.channels[c], ds, int(rng.integers(2 ** 31)))
        out["mcs"][j], out["channel"][j], out["delay_spread_ns"][j], out["snr_db"][j] = mcs, c, ds, snr
        out["no"][j] = 10.0 ** (-snr / 10.0)
        out["bits_per_symbol"][j] = chains[mcs].num_bits_per_symbol
        payload[j] = rng.integers(0, 2, chains[mcs].tbs_bits)
        noise[j] = (rng.standard_normal((a, NUM_OFDM_SYMBOLS, num_sc))
                    + 1j * rng.standard_normal((a, NUM_OFDM_SYMBOLS, num_sc))) * np.sqrt(0.5)
    for mcs, ch in chains.items():
        rows = np.flatnonzero(out["mcs"] == mcs)
        if rows.size == 0:
            continue
        bits = tf.constant(np.stack([payload[j] for j in rows])[:, None, :], tf.float32)
        c = ch.tb_encoder(bits)                                                  # [m, 1, N] coded bits
        x = ch.rg_mapper(ch.layer_mapper(ch.mapper(c))).numpy()[:, 0, 0]        # [m, 14, sc]
        out["bits"][rows] = coded_to_grid(c.numpy()[:, 0].astype(np.uint8), data_re, ch.num_bits_per_symbol, width)
        w = np.stack([noise[j] for j in rows])
        h = out["h"][rows]
        out["y"][rows] = (h[:, :, None, :] * x[:, None] + np.sqrt(out["no"][rows])[:, None, None, None] * w)
    return out


def reference_llrs(cfg: DeepRxDataConfig, arrays: dict[str, np.ndarray], receiver: str) -> np.ndarray:
    """LLRs of the link-level chain's own receivers on dataset samples, on the bit grid of ``bits``:
    [n, 14, sc, B] float32 (zero off the data REs and beyond each sample's order).

    receiver "lmmse": the chain's LS estimator (DMRS, linear interpolation) + LMMSE detector;
    "genie_lmmse": the true h (error variance 0) + the same detector, as ``Chain._run`` does.
    Compare with the neural receiver through ``hard_ber(llr, bits, mask)``."""
    import tensorflow as tf

    if receiver not in ("lmmse", "genie_lmmse"):
        raise ValueError(f"receiver must be 'lmmse' or 'genie_lmmse', got {receiver!r}")
    data_re = arrays["data_re"]
    n, a, _, num_sc = arrays["y"].shape
    out = np.zeros(arrays["bits"].shape, np.float32)
    for mcs in np.unique(arrays["mcs"]):
        chain = _chain(cfg, int(mcs))
        rows = np.flatnonzero(arrays["mcs"] == mcs)
        y = tf.constant(arrays["y"][rows][:, None])                             # [m, 1, ant, 14, sc]
        no = tf.constant(arrays["no"][rows])
        if receiver == "lmmse":
            h_hat, err_var = chain.estimator(y, no)
        else:
            h = tf.constant(arrays["h"][rows])
            h_hat = tf.broadcast_to(h[:, None, :, None, None, None, :], [len(rows), 1, a, 1, 1, NUM_OFDM_SYMBOLS, num_sc])
            err_var = tf.zeros([], tf.float32)
        llr = chain.layer_demapper(chain.detector(y, h_hat, err_var, no))[:, 0].numpy()   # [m, N], coded-bit order
        out[rows] = coded_to_grid(llr.astype(np.float32), data_re, chain.num_bits_per_symbol, out.shape[-1])
    return out


def _write_shard(cfg_json: dict, start: int, stop: int, path: str) -> dict:
    """Draw samples start..stop-1 into the shard file ``path`` (atomically); its description entry
    plus ``bits_width``. Module level, so a worker process can run it."""
    path = Path(path)
    arrays = draw_samples(DeepRxDataConfig.model_validate(cfg_json), range(start, stop))
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return {"file": path.name, "num_samples": int(arrays["index"].size), "sha256": _sha256(path),
            "bits_width": int(arrays["bits"].shape[-1])}


def generate_dataset(cfg: DeepRxDataConfig, out: str | Path, progress=None, workers: int = 1) -> Path:
    """Draw and write the dataset; returns description.json's path. Refuses an ``out`` that holds
    a dataset of another config. ``workers`` > 1 draws shards in that many processes (spawned);
    every sample depends only on its index, so the shards are the same bytes either way."""
    out = Path(out)
    desc_path = out / DESCRIPTION
    cfg_json = json.loads(cfg.model_dump_json())
    if desc_path.exists() and json.loads(desc_path.read_text()).get("config") != cfg_json:
        raise ValueError(f"{out} holds a deeprx dataset of a different config; choose another --out")
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(cfg_json, start, min(start + cfg.shard_size, cfg.num_samples), str(out / f"shard_{k:05d}.npz"))
            for k, start in enumerate(range(0, cfg.num_samples, cfg.shard_size))]
    shards = [None] * len(jobs)
    if workers == 1 or len(jobs) == 1:
        for k, job in enumerate(jobs):
            shards[k] = _write_shard(*job)
            if progress is not None:
                progress(k + 1, len(jobs))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_write_shard, *job): k for k, job in enumerate(jobs)}
            for done, f in enumerate(as_completed(futures), 1):
                shards[futures[f]] = f.result()
                if progress is not None:
                    progress(done, len(jobs))
    width = shards[0].pop("bits_width")
    for s in shards[1:]:
        s.pop("bits_width")
    desc = {"kind": "airtune deeprx dataset", "config": cfg_json,
            "grid": {"num_ofdm_symbols": NUM_OFDM_SYMBOLS, "num_subcarriers": 12 * cfg.num_prbs,
                     "num_rx_ant": cfg.num_rx_ant, "bits_width": width},
            "signal_model": "y = h x + sqrt(no) w, h held over the slot, no = 10^(-snr_db/10), signal power 1",
            "shards": shards}
    desc_path.write_text(json.dumps(desc, indent=2))
    return desc_path


def read_description(path: str | Path) -> dict:
    """description.json of the deeprx dataset folder ``path`` ({"config", "grid", "shards", ...},
    see the module docstring); a ValueError naming the folder if it holds none."""
    desc_path = Path(path) / DESCRIPTION
    if not desc_path.is_file():
        raise ValueError(f"no deeprx dataset at {str(path)!r} (make one with `airtune data deeprx`)")
    try:
        desc = json.loads(desc_path.read_text())
        kind = desc["config"]["kind"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read {desc_path}: {exc}") from None
    if kind != "deeprx_data" or not isinstance(desc.get("shards"), list):
        raise ValueError(f"{str(path)!r} is not a deeprx dataset (config kind {kind!r})")
    return desc


def dataset_size(desc: dict) -> int:
    """Samples in a described dataset (all its shards)."""
    return sum(int(s["num_samples"]) for s in desc["shards"])


def load_dataset(path: str | Path, size: int | None = None) -> dict[str, np.ndarray]:
    """The first ``size`` samples (default: all) of a dataset folder, reading only the shards they
    are in (sha256 checked); ``pilots``/``data_re`` once."""
    path = Path(path)
    desc = read_description(path)
    parts, have = [], 0
    for s in desc["shards"]:
        if size is not None and have >= size:
            break
        f = path / s["file"]
        if _sha256(f) != s["sha256"]:
            raise ValueError(f"{f}: sha256 does not match {DESCRIPTION}")
        with np.load(f, allow_pickle=False) as z:
            parts.append({k: z[k] for k in z.files})
        have += int(s["num_samples"])
    if size is not None and have < size:
        raise ValueError(f"{path} has {have} samples, {size} asked for")
    n = have if size is None else size
    out = {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0] if k not in ("pilots", "data_re")}
    out["pilots"], out["data_re"] = parts[0]["pilots"], parts[0]["data_re"]
    return out


def to_batch(arrays: dict[str, np.ndarray], max_bits_per_symbol: int = 8, dtype: str = "float32",
             rows=slice(None)) -> dict:
    """Dataset arrays -> a model batch {"x" [n, 14, sc, 4 ant + 3], "bits", "mask" [n, 14, sc, max_bits]}."""
    import tensorflow as tf

    from models.deeprx.model import loss_mask, make_features

    y = arrays["y"][rows]
    n = y.shape[0]
    pilots = np.broadcast_to(arrays["pilots"], (n, *arrays["pilots"].shape))
    bits = arrays["bits"][rows]
    if bits.shape[-1] > max_bits_per_symbol:
        raise ValueError(f"dataset has {bits.shape[-1]} bits per RE, the model {max_bits_per_symbol}")
    bits = np.pad(bits, [(0, 0)] * 3 + [(0, max_bits_per_symbol - bits.shape[-1])])
    data_re = np.broadcast_to(arrays["data_re"], (n, *arrays["data_re"].shape))
    return {"x": make_features(y, pilots, arrays["no"][rows], dtype),
            "bits": tf.constant(bits, dtype),
            "mask": loss_mask(data_re, arrays["bits_per_symbol"][rows], max_bits_per_symbol, dtype)}
