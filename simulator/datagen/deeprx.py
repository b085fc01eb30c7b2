"""DeepRx training data from the simulator's own NR chain and fading channel (``airtune data deeprx``).

A sample is one slot of the PDSCH stand-in of ``simulator/phy/nr_chain.py`` (its ``Chain``
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

The arrays and the folder layout are the dataset format of ``models/deeprx/data.py``, which
writes and reads them. ``reference_llrs`` runs the chain's own LS+LMMSE and genie LMMSE
receivers on dataset samples, on the same bit grid, for comparison with DeepRx.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.deeprx.data import (DATA_KIND, DESCRIPTION, coded_to_grid, read_description, sample_grid,
                                write_description, write_shard)
from simulator.channel.fading import FadingChannel
from simulator.link_adaptation.tables import NUM_OFDM_SYMBOLS
from simulator.loader import load_yaml_config
from simulator.phy.nr_chain import Chain, ChainKey, get_chain
from simulator.schema import CDL_PROFILES, FIXED_DELAY_SPREAD_NS, TDL_PROFILES, CarrierConfig, ChannelConfig

REFERENCE_RECEIVERS = ("lmmse", "genie_lmmse")     # the chain's own receivers, for comparison


class DeepRxDataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal[DATA_KIND] = Field(DATA_KIND, description="marks the YAML as a DeepRx data config")
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
    """A YAML data config; raises ConfigError (a ValueError) with field paths and YAML lines."""
    return load_yaml_config(path, DeepRxDataConfig, what="data config")


def data_config_of(desc: dict) -> DeepRxDataConfig:
    """The data config a dataset (its description, ``models.deeprx.data.read_description``) was drawn with."""
    return DeepRxDataConfig.model_validate(desc["config"])


def chain(cfg: DeepRxDataConfig, mcs: int) -> Chain:
    """The NR chain (LS+LMMSE receiver) of the config's grid at ``mcs``."""
    return get_chain(ChainKey(num_prbs=cfg.num_prbs, subcarrier_spacing_khz=cfg.subcarrier_spacing_khz,
                              mcs_table=cfg.mcs_table, num_dmrs_symbols=cfg.num_dmrs_symbols,
                              num_ue_ant=cfg.num_rx_ant, receiver="lmmse", mcs=mcs))


def _channel(cfg: DeepRxDataConfig, which: str, delay_spread_ns: float, seed: int) -> np.ndarray:
    """One slot of the simulator's FadingChannel: h [ant, sc] complex64."""
    model, _, profile = which.partition(":")
    ch_kw = {} if (model == "tdl" and profile in FIXED_DELAY_SPREAD_NS) else {"delay_spread_ns": delay_spread_ns}
    ch_cfg = ChannelConfig(model=model, profile=profile, **ch_kw)
    carrier = CarrierConfig(subcarrier_spacing_khz=cfg.subcarrier_spacing_khz, num_prbs=cfg.num_prbs,
                            carrier_frequency_ghz=cfg.carrier_frequency_ghz)
    return FadingChannel(ch_cfg, carrier, cfg.num_rx_ant, 0.0, np.zeros(1, np.int64), seed).cfr_slot(0)[:, 0]


def draw_samples(cfg: DeepRxDataConfig, indices: Sequence[int]) -> dict[str, np.ndarray]:
    """The samples with these indices (the arrays of ``models.deeprx.data``'s module docstring)."""
    import tensorflow as tf

    indices = np.asarray(indices, np.int64)
    n, a = len(indices), cfg.num_rx_ant
    chains = {m: chain(cfg, m) for m in cfg.mcs}
    first = chains[cfg.mcs[0]]
    pilots, data_re = first.pilots, first.data_re
    for m, ch in chains.items():
        if not np.array_equal(ch.pilots, pilots):
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
    """LLRs of the NR chain's own receivers on dataset samples, on the bit grid of ``bits``:
    [n, 14, sc, B] float32 (zero off the data REs and beyond each sample's order).

    receiver "lmmse": the chain's LS estimator (DMRS, linear interpolation) + LMMSE detector;
    "genie_lmmse": the true h (error variance 0) + the same detector, as ``Chain._run`` does.
    Compare with the neural receiver through ``hard_ber(llr, bits, mask)``."""
    import tensorflow as tf

    if receiver not in REFERENCE_RECEIVERS:
        raise ValueError(f"receiver must be one of {REFERENCE_RECEIVERS}, got {receiver!r}")
    data_re = arrays["data_re"]
    n, a, _, num_sc = arrays["y"].shape
    out = np.zeros(arrays["bits"].shape, np.float32)
    for mcs in np.unique(arrays["mcs"]):
        ch = chain(cfg, int(mcs))
        rows = np.flatnonzero(arrays["mcs"] == mcs)
        y = tf.constant(arrays["y"][rows][:, None])                             # [m, 1, ant, 14, sc]
        no = tf.constant(arrays["no"][rows])
        if receiver == "lmmse":
            h_hat, err_var = ch.estimator(y, no)
        else:
            h = tf.constant(arrays["h"][rows])
            h_hat = tf.broadcast_to(h[:, None, :, None, None, None, :], [len(rows), 1, a, 1, 1, NUM_OFDM_SYMBOLS, num_sc])
            err_var = tf.zeros([], tf.float32)
        llr = ch.layer_demapper(ch.detector(y, h_hat, err_var, no))[:, 0].numpy()   # [m, N], coded-bit order
        out[rows] = coded_to_grid(llr.astype(np.float32), data_re, ch.num_bits_per_symbol, out.shape[-1])
    return out


def reference_receivers(cfg: DeepRxDataConfig) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """dataset arrays -> {receiver: ``reference_llrs``} for every reference receiver of the chain, on
    the grid of ``cfg`` (the hook ``models.deeprx.train`` compares DeepRx with)."""
    return lambda arrays: {rx: reference_llrs(cfg, arrays, rx) for rx in REFERENCE_RECEIVERS}


def _write_shard(cfg_json: dict, start: int, stop: int, path: str) -> dict:
    """Draw samples start..stop-1 into the shard file ``path``; its description entry plus
    ``grid`` (``sample_grid``). Module level, so a worker process can run it."""
    arrays = draw_samples(DeepRxDataConfig.model_validate(cfg_json), range(start, stop))
    return {**write_shard(Path(path), arrays), "grid": sample_grid(arrays)}


def generate_dataset(cfg: DeepRxDataConfig, out: str | Path, progress=None, workers: int = 1) -> Path:
    """Draw and write the dataset; returns description.json's path. Refuses an ``out`` that holds
    a dataset of another config. ``workers`` > 1 draws shards in that many processes (spawned);
    every sample depends only on its index, so the shards are the same bytes either way."""
    out = Path(out)
    cfg_json = json.loads(cfg.model_dump_json())
    if (out / DESCRIPTION).exists() and read_description(out)["config"] != cfg_json:
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
    return write_description(out, cfg_json, [{k: v for k, v in s.items() if k != "grid"} for s in shards],
                             shards[0]["grid"])
