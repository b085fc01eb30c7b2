"""Link-level backend speed: the airtune engine against a bare batched XLA Sionna chain.

Run: .venv/bin/python -m pytest -m benchmark -s tests/benchmarks/bench_link_level.py
Requirement: engine UE-slots/s >= 0.8 x the bare chain's slots/s, same configuration.

Configuration: scenarios/quickstart.yaml (52 PRB, 30 kHz, TDL-B, 15 dB) with
``phy.backend=link_level``. To keep the MCS fixed, OLLA is off and the UE is static (frozen
channel), so the MCS is the one of the first CQI report for the whole run (the lowest MCS
is used for the few slots before it). ``phy.link_level_batch=2``: with one UE and k1 = 2
the engine resolves 2 transport blocks per XLA call; the bare chain runs the same batch.

(a) engine: ``Simulation.run()`` wall time of the whole run (setup, SimPy, fading, logging
    included), after a warm-up run of the same scenario that compiles everything;
(b) bare chain: ``PUSCHTransmitter`` (random bits) -> ``y = h x + n`` (the engine's channel
    of that UE, tf.random noise) -> ``PUSCHReceiver`` (perfect CSI or its default LS
    estimator with linear interpolation, LMMSE, TB CRC) in one ``tf.function(jit_compile=True)``
    at the engine's MCS, batch 2, after warm-up.
The two are timed alternately (best of 3) to share whatever else loads the machine.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from simulator.engine import Simulation
from simulator.loader import load_scenario
from tests.conftest import REPO

pytestmark = pytest.mark.benchmark

NUM_SLOTS = 400          # 0.2 s at 30 kHz
BATCH = 2                # num_ues * k1_slots
REPS = 3


def _scenario(receiver: str, num_slots: int, extra: tuple[str, ...] = ()):
    return load_scenario(REPO / "scenarios" / "quickstart.yaml", [
        f"duration_s={num_slots * 0.0005}", "phy.backend=link_level", f"phy.receiver={receiver}",
        f"phy.link_level_batch={BATCH}", "link_adaptation.olla.enabled=false",
        "ues.0.mobility={model: static, position_m: [0, 0, 1.5]}", *extra,
    ])


def _bare_chain(sc, mcs: int, h: np.ndarray):
    import tensorflow as tf
    from sionna.phy.nr import PUSCHReceiver, PUSCHTransmitter

    from simulator.phy.nr_chain import ChainKey, pusch_config

    pc = pusch_config(ChainKey(sc.carrier.num_prbs, sc.carrier.subcarrier_spacing_khz, sc.phy.mcs_table,
                               sc.phy.num_dmrs_symbols, sc.phy.num_ue_antennas, sc.phy.receiver, mcs))
    tx = PUSCHTransmitter(pc)
    est = "perfect" if sc.phy.receiver == "genie_lmmse" else None
    rx = PUSCHReceiver(tx, channel_estimator=est, return_tb_crc_status=True)
    num_ant, num_sc = h.shape
    h_b = tf.constant(np.broadcast_to(h, (BATCH, num_ant, num_sc)), tf.complex64)
    no = tf.constant(10 ** (-sc.snr.snr_db / 10), tf.float32)

    @tf.function(jit_compile=True)
    def run(h_b, no):
        x, b = tx(BATCH)                                                  # [B, 1, 1, 14, S]
        y = h_b[:, None, :, None, :] * x[:, :, 0:1]                       # [B, 1, A, 14, S]
        shape = tf.shape(y)
        n = tf.complex(tf.random.normal(shape), tf.random.normal(shape)) * tf.cast(tf.sqrt(no / 2), tf.complex64)
        y = y + n
        if est is None:
            _, crc = rx(y, no)
        else:
            h_full = tf.broadcast_to(h_b[:, None, :, None, None, None, :], [BATCH, 1, num_ant, 1, 1, 14, num_sc])
            _, crc = rx(y, no, h_full)
        return crc

    return lambda: run(h_b, no).numpy()


def _time_engine(sc, out):
    t0 = time.perf_counter()
    Simulation(sc, out).run()
    return time.perf_counter() - t0


@pytest.mark.parametrize("receiver", ["genie_lmmse", "lmmse"])
def test_link_level_engine_vs_bare_chain(tmp_path, receiver):
    from simulator.phy.nr_chain import ChainKey, get_chain

    sc = _scenario(receiver, NUM_SLOTS)
    Simulation(_scenario(receiver, 40), tmp_path / "warm").run()           # compiles both MCS
    warm_log = pd.read_parquet(tmp_path / "warm" / "slots.parquet")
    mcs = int(warm_log["mcs"].iloc[-1])
    key = ChainKey(sc.carrier.num_prbs, sc.carrier.subcarrier_spacing_khz, sc.phy.mcs_table,
                   sc.phy.num_dmrs_symbols, sc.phy.num_ue_antennas, receiver, mcs)
    chain = get_chain(key)

    from simulator.channel.fading import FadingChannel
    from simulator.engine import seeds_for
    ch_seed = int(seeds_for(sc)[0]["channel"].generate_state(1)[0])
    h = FadingChannel(sc.channel, sc.carrier, sc.phy.num_ue_antennas, 0.0, np.zeros(1, np.int64), ch_seed).cfr_slot(0)[:, 0]
    bare = _bare_chain(sc, mcs, h)
    bare()                                                                # compile
    calls_per_rep = NUM_SLOTS // BATCH

    engine_s, bare_s = [], []
    for k in range(REPS):
        c0, t0 = chain.calls, chain.transmissions
        engine_s.append(_time_engine(sc, tmp_path / f"r{k}"))
        calls, txs = chain.calls - c0, chain.transmissions - t0
        t1 = time.perf_counter()
        for _ in range(calls_per_rep):
            bare()
        bare_s.append(time.perf_counter() - t1)
    log = pd.read_parquet(tmp_path / "r0" / "slots.parquet")
    engine_sps = NUM_SLOTS / min(engine_s)
    bare_sps = calls_per_rep * BATCH / min(bare_s)
    ratio = engine_sps / bare_sps
    share = (log["mcs"] == mcs).mean()
    print(f"\n[bench] link_level {receiver}, quickstart 52 PRB TDL-B 15 dB, MCS {mcs} ({share:.1%} of "
          f"transmissions), batch {BATCH} ({txs / max(calls, 1):.2f} TBs per call at MCS {mcs}): "
          f"engine {engine_sps:.1f} UE-slots/s (whole run, {NUM_SLOTS} slots, best of {REPS}) | "
          f"bare Sionna XLA chain {bare_sps:.1f} slots/s | ratio {ratio:.2f} (requirement >= 0.8)")
    assert ratio >= 0.8
