"""DeepRx training data from the simulator's own NR chain and Sionna's TDL/CDL channels (``airtune data deeprx``).

A sample is one slot of the PDSCH stand-in of ``simulator/phy/nr_chain.py`` (its ``Chain``
components, unchanged: ``TBEncoder`` -> QAM ``Mapper`` -> ``LayerMapper`` -> ``ResourceGridMapper``
with the ``PUSCHPilotPattern``) through a 38.901 TDL/CDL channel of Sionna, with the antennas of the
simulator's ``FadingChannel`` (gNB: one 38.901 element; UE: a row of omni elements) and the same
received-signal model as the chain: ``y = h x + sqrt(no) w``, h [ant, sc] held over the 14 symbols,
no = 10^(-snr_db / 10) per RE (signal power 1). Each sample draws its channel model/profile,
delay spread, SNR and MCS uniformly from the config's lists and ranges. Doppler does not enter:
the chain holds the channel constant within a slot, so one slot has no time variation to learn.

Channels are drawn in blocks of ``CHANNEL_BLOCK`` samples: sample i's channel is element
i mod CHANNEL_BLOCK of one batched Sionna call for its profile, seeded by (config seed, block
i // CHANNEL_BLOCK, profile name) and made at a delay spread of 1 s, its delays then multiplied
by the sample's delay spread (float32, the product Sionna forms itself: TDL/CDL path gains do not
depend on the delay spread, so the channel is the one a call at the sample's spread would give;
fixed-spread TDL profiles such as A30 are not scaled), and its frequency response from Sionna's
``cir_to_ofdm_channel`` on the whole block. Everything else of sample i (MCS, profile, delay
spread, SNR, payload, noise) comes from ``numpy.random.default_rng([seed, i])``. So
``draw_samples(cfg, [i])`` regenerates sample i exactly, whatever else is drawn with it (influence
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
from simulator.channel.fading import _gnb_array, _ue_array
from simulator.link_adaptation.tables import NUM_OFDM_SYMBOLS
from simulator.loader import load_yaml_config
from simulator.phy.nr_chain import Chain, ChainKey, get_chain
from simulator.schema import (CDL_PROFILES, FIXED_DELAY_SPREAD_NS, TDL_PROFILES, CarrierConfig, ChannelConfig,
                              GnbConfig)

REFERENCE_RECEIVERS = ("lmmse", "genie_lmmse")     # the chain's own receivers, for comparison
# Samples per batched Sionna channel call. A block makes one call per profile of the config, each of
# the whole block (an element serves only the samples of that profile), also to regenerate one sample.
# Measured at 4 PRB, one thread: TDL 6 / 10 / 28 ms and CDL 67 / 165 / 600 ms a call at 64 / 256 / 1,024,
# so with 3 TDL + 2 CDL profiles a slot costs 2.4 / 1.4 / 1.25 ms of channel: 256 is near the large-block
# rate while one regenerated sample costs at most ~0.2 s, and it divides the bundled shard sizes (1,024,
# 4,096), so no shard draws a block another shard needs. Changing it changes the samples.
CHANNEL_BLOCK = 256
REFERENCE_DELAY_SPREAD_S = 1.0                     # the spread of the block call; delays x the sample's spread


class DeepRxDataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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


def _index_draws(cfg: DeepRxDataConfig, i: int) -> tuple[np.random.Generator, int, int, float, float]:
    """Sample i's generator and its first draws: (rng, mcs, channel index, delay spread [ns], SNR [dB]);
    the rng goes on to the payload and the noise."""
    rng = np.random.default_rng([cfg.seed, int(i)])
    mcs = cfg.mcs[rng.integers(len(cfg.mcs))]
    c = int(rng.integers(len(cfg.channels)))
    return rng, mcs, c, rng.uniform(*cfg.delay_spread_ns), rng.uniform(*cfg.snr_db)


def _carrier(cfg: DeepRxDataConfig) -> CarrierConfig:
    return CarrierConfig(subcarrier_spacing_khz=cfg.subcarrier_spacing_khz, num_prbs=cfg.num_prbs,
                         carrier_frequency_ghz=cfg.carrier_frequency_ghz)


def _sionna_model(cfg: DeepRxDataConfig, which: str):
    """Sionna's TDL/CDL of the channel ``which`` at REFERENCE_DELAY_SPREAD_S (a fixed-spread TDL profile
    at its own), static, with FadingChannel's antennas (one gNB element); whether to scale its delays."""
    from sionna.phy.channel.tr38901 import CDL, TDL

    model, _, profile = which.partition(":")
    fc_hz = cfg.carrier_frequency_ghz * 1e9
    fixed_ns = FIXED_DELAY_SPREAD_NS.get(profile) if model == "tdl" else None
    spread_s = REFERENCE_DELAY_SPREAD_S if fixed_ns is None else fixed_ns / 1e9     # Sionna's own value: no warning
    if model == "tdl":
        return TDL(profile, spread_s, fc_hz, num_sinusoids=ChannelConfig.model_fields["num_sinusoids"].default,
                   min_speed=0.0, max_speed=0.0, num_rx_ant=cfg.num_rx_ant, num_tx_ant=1), fixed_ns is None
    return CDL(profile, spread_s, fc_hz, _ue_array(cfg.num_rx_ant, fc_hz), _gnb_array(GnbConfig(), fc_hz),
               "downlink", min_speed=0.0, max_speed=0.0), True


def block_seed(cfg: DeepRxDataConfig, which: str, block: int) -> int:
    """The Sionna seed of the block call of channel ``which`` (e.g. "tdl:A") for samples block * CHANNEL_BLOCK ..."""
    return int(np.random.default_rng([cfg.seed, block, *which.encode()]).integers(2 ** 31))


def block_paths(cfg: DeepRxDataConfig, which: str, block: int):
    """One batched Sionna call: the paths of channel ``which`` for samples block * CHANNEL_BLOCK ...,
    element k at the delay spread drawn for sample block * CHANNEL_BLOCK + k (module docstring).

    Output: a [CHANNEL_BLOCK, 1, ant, 1, 1, paths, 1] complex64 path gains and tau [CHANNEL_BLOCK, 1, 1,
    paths] float32 delays [s] (tf.Tensor, Sionna's TDL/CDL layout)."""
    import sionna.phy
    import tensorflow as tf

    first = block * CHANNEL_BLOCK
    spread_s = np.array([_index_draws(cfg, first + k)[3] for k in range(CHANNEL_BLOCK)]) * 1e-9
    model, scaled = _sionna_model(cfg, which)
    sionna.phy.config.seed = block_seed(cfg, which, block)
    a, tau = model(CHANNEL_BLOCK, 1, 1e6 / _carrier(cfg).slot_us)
    return a, (tau * tf.constant(spread_s, tf.float32)[:, None, None, None] if scaled else tau)


def _channel_block(cfg: DeepRxDataConfig, which: str, block: int) -> np.ndarray:
    """h [CHANNEL_BLOCK, ant, sc] complex64 of ``block_paths`` (Sionna's cir_to_ofdm_channel)."""
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies

    freqs_hz = subcarrier_frequencies(_carrier(cfg).num_subcarriers, cfg.subcarrier_spacing_khz * 1e3)
    return cir_to_ofdm_channel(freqs_hz, *block_paths(cfg, which, block)).numpy()[:, 0, :, 0, 0, 0]


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
        rng, mcs, c, ds, snr = _index_draws(cfg, i)
        out["mcs"][j], out["channel"][j], out["delay_spread_ns"][j], out["snr_db"][j] = mcs, c, ds, snr
        out["no"][j] = 10.0 ** (-snr / 10.0)
        out["bits_per_symbol"][j] = chains[mcs].num_bits_per_symbol
        payload[j] = rng.integers(0, 2, chains[mcs].tbs_bits)
        noise[j] = (rng.standard_normal((a, NUM_OFDM_SYMBOLS, num_sc))
                    + 1j * rng.standard_normal((a, NUM_OFDM_SYMBOLS, num_sc))) * np.sqrt(0.5)
    blocks = indices // CHANNEL_BLOCK
    for block in np.unique(blocks):
        for c in np.unique(out["channel"][blocks == block]):
            rows = np.flatnonzero((blocks == block) & (out["channel"] == c))
            out["h"][rows] = _channel_block(cfg, cfg.channels[c], int(block))[indices[rows] % CHANNEL_BLOCK]
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
    "genie_lmmse": the true h (error variance 0) + the same detector, as the chain's link does.
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
