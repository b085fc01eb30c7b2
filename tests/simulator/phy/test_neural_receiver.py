"""``phy.receiver: neural`` in the link-level backend (4 PRBs at 30 kHz, one DMRS symbol).

The known answer: a "neural receiver" that returns the chain's own LS+LMMSE LLRs, placed on
the resource grid, must reproduce the ``lmmse`` receiver exactly (ACK/NACK over HARQ rounds,
BER, soft buffers): that pins the grid -> coded-bit layout, the LLR sign and scale and the
Chase-combining path. Each chain costs its XLA compilations (~1-4 s on two cores).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from models.deeprx.model import DeepRx, DeepRxConfig, grid_to_coded
from models.registry import get_model
from simulator.link_adaptation.tables import NUM_OFDM_SYMBOLS, bler_table
from simulator.loader import ConfigError, validate_data
from simulator.validation import check_files
from simulator.phy.base import Transmission
from simulator.phy.link_level import LinkLevelBackend
from simulator.phy.nr_chain import ChainKey, get_chain

NUM_PRBS = 4
NUM_DMRS = 1
QPSK_MCS = 5
TINY_RX = dict(num_rx_ant=1, max_bits_per_symbol=6, input_filters=4, blocks=((4, 1, 1), (4, 2, 2)))


def _scenario(receiver="lmmse", models=None, **phy):
    doc = {"name": "nrx", "duration_s": 0.01,
           "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": NUM_PRBS},
           "phy": {"backend": "link_level", "receiver": receiver, "num_dmrs_symbols": NUM_DMRS, **phy},
           "ues": [{"id": 0}, {"id": 1}]}
    if models is not None:
        doc["models"] = models
    return validate_data(doc)


def _save_tiny(path, **data_config) -> str:
    grid = {"num_prbs": NUM_PRBS, "num_dmrs_symbols": NUM_DMRS, "subcarrier_spacing_khz": 30, **data_config}
    return str(DeepRx(DeepRxConfig(**TINY_RX), seed=0).save(path, training={"data_config": grid}))


class LmmseOracle:
    """A neural receiver that returns the LS+LMMSE LLRs of ``ref`` (a chain of one MCS) on the grid."""

    num_rx_ant = 1
    max_bits_per_symbol = 6

    def __init__(self, ref):
        self.ref = ref
        self.graph_key = ("lmmse_oracle", ref.key)
        n_re = ref.data_re_index.size
        self.inverse = np.full(NUM_OFDM_SYMBOLS * ref.num_subcarriers, n_re, np.int32)   # non-data REs -> a zero row
        self.inverse[ref.data_re_index] = np.arange(n_re)

    def llr_grid(self, y, pilots, no, params):
        ref, bps = self.ref, self.ref.num_bits_per_symbol
        h_hat, err_var = ref.estimator(y[:, None], no)
        llr = ref._detect(y[:, None], h_hat, err_var, no)                        # [B, N] coded-bit order
        b = tf.shape(llr)[0]
        re = tf.concat([tf.reshape(llr, [b, -1, bps]), tf.zeros([b, 1, bps])], axis=1)
        grid = tf.gather(re, self.inverse, axis=1)                                # [B, 14 S, bps]
        grid = tf.pad(grid, [[0, 0], [0, 0], [0, self.max_bits_per_symbol - bps]])
        return tf.reshape(grid, [b, NUM_OFDM_SYMBOLS, ref.num_subcarriers, self.max_bits_per_symbol])

    def weights(self):
        return []


def test_grid_layout_matches_the_deeprx_data_pipeline():
    """The chain's pilot grid and data REs (DMRS on symbol 2, port 0 on the even subcarriers, no data on
    the DMRS symbol) are those the DeepRx training data stores, and its grid -> coded order is the
    model's ``grid_to_coded``."""
    from simulator.datagen.deeprx import DeepRxDataConfig, draw_samples

    chain = get_chain(ChainKey(NUM_PRBS, 30, 1, NUM_DMRS, 1, "lmmse", QPSK_MCS))
    pilots, data_re = chain.pilots, chain.data_re
    assert pilots.shape == data_re.shape == (NUM_OFDM_SYMBOLS, chain.num_subcarriers)
    np.testing.assert_array_equal(np.flatnonzero(pilots[2]), np.arange(0, chain.num_subcarriers, 2))
    assert not np.delete(pilots, 2, axis=0).any()
    np.testing.assert_array_equal(data_re, np.broadcast_to(np.arange(NUM_OFDM_SYMBOLS)[:, None] != 2, data_re.shape))
    cfg = DeepRxDataConfig(num_prbs=NUM_PRBS, num_dmrs_symbols=NUM_DMRS, mcs=(QPSK_MCS,), channels=("tdl:A",))
    arrays = draw_samples(cfg, [0])
    np.testing.assert_array_equal(arrays["pilots"], pilots)
    np.testing.assert_array_equal(arrays["data_re"], data_re)
    grid = tf.constant(np.random.default_rng(0).standard_normal((3, NUM_OFDM_SYMBOLS, chain.num_subcarriers, 6)),
                       tf.float32)
    np.testing.assert_array_equal(chain.grid_to_coded(grid).numpy(),
                                  grid_to_coded(grid, data_re, chain.num_bits_per_symbol).numpy())


def test_lmmse_llrs_through_the_neural_path_reproduce_lmmse(tmp_path):
    """HARQ rounds 1-3 at -4..10 dB on random two-path channels: identical ACKs, BER, SINR and soft buffers."""
    rng = np.random.default_rng(3)
    tbs = int(bler_table(1, NUM_PRBS, NUM_DMRS).tbs_bits[QPSK_MCS])
    num_sc = 12 * NUM_PRBS
    k = np.arange(num_sc)
    g = (rng.normal(size=(8, 2)) + 1j * rng.normal(size=(8, 2))) / 2.0
    hs = {(u, p): (g[2 * p + u, 0] + g[2 * p + u, 1] * np.exp(-2j * np.pi * 3 * k / num_sc))[None].astype(np.complex64)
          for u in (0, 1) for p in range(4)}
    snrs = {key: snr for key, snr in zip(sorted(hs), np.linspace(-4.0, 10.0, 8))}
    oracle = LmmseOracle(get_chain(ChainKey(NUM_PRBS, 30, 1, NUM_DMRS, 1, "lmmse", QPSK_MCS)))

    def run(backend):
        rows = []
        for rnd in (1, 2, 3):
            txs = [Transmission(u, rnd, rnd * 500, p, rnd, QPSK_MCS, tbs, snrs[(u, p)], hs[(u, p)])
                   for u, p in sorted(hs)]
            for tx in txs:
                backend.submit(tx)
            backend.resolve(txs[0])
            rows += [(tx.ack, tx.ber, round(tx.sinr_eff_db, 4), tx.ber_ls, tx.ber_genie) for tx in txs]
        return rows, {k: v.copy() for k, v in backend._soft.items()}

    ref_rows, ref_soft = run(LinkLevelBackend(_scenario("lmmse", link_level_batch=8), {0: 5, 1: 6}))
    models = {"receiver": {"checkpoint": _save_tiny(tmp_path / "rx.json")}}      # replaced by the oracle
    nrx = LinkLevelBackend(_scenario("neural", models, link_level_batch=8), {0: 5, 1: 6}, neural=oracle)
    rows, soft = run(nrx)
    assert [r[:3] for r in rows] == [r[:3] for r in ref_rows]
    assert all(r[3] == r[1] for r in rows)                       # ber_ls: the same LMMSE on the same grid
    assert all(0 <= r[4] <= 0.5 for r in rows) and all(math.isnan(r[3]) for r in ref_rows)
    acks = [r[0] for r in rows]
    assert 0 < sum(acks) < len(acks)                              # both outcomes occur, so HARQ is exercised
    for k in ref_soft:
        np.testing.assert_allclose(soft[k], ref_soft[k], rtol=1e-5, atol=1e-4)


def test_end_to_end_neural_receiver_logs_three_bers(tmp_path):
    from simulator.engine import Simulation

    ckpt = _save_tiny(tmp_path / "rx.json")
    # the first CQI report arrives after the run, so every transport block uses the lowest MCS (one compilation)
    sc = validate_data({
        "name": "nrx-e2e", "seed": 1, "duration_s": 0.01,
        "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": NUM_PRBS},
        "csi_rs": {"period_ms": 20, "report_delay_ms": 15},
        "phy": {"backend": "link_level", "receiver": "neural", "num_dmrs_symbols": NUM_DMRS, "link_level_batch": 2},
        "snr": {"model": "fixed", "snr_db": 20},
        "ues": [{"id": 0, "mobility": {"model": "static"}}],
        "link_adaptation": {"olla": {"enabled": False}},
        "models": {"receiver": {"type": "deeprx", "checkpoint": ckpt}},
    })
    summary = Simulation(sc, tmp_path / "run").run()
    slots = pd.read_parquet(tmp_path / "run" / "slots.parquet")
    assert len(slots) == summary.transmissions > 10
    assert (slots["receiver"] == "neural").all()
    for col in ("ber", "ber_genie", "ber_ls"):
        assert slots[col].notna().all() and slots[col].between(0, 1).all(), col
    assert slots["ber_genie"].max() < 0.01 and slots["ber_ls"].max() < 0.05      # 20 dB
    assert slots["ber"].mean() > 0.2                                             # an untrained network


def test_the_backend_loads_the_receiver_through_the_registry(tmp_path):
    """``models.receiver`` is loaded as ``get_model(type).load(checkpoint)``; its ``llr_grid`` with the
    weights as arguments is the model's own forward pass, and receivers of one config share a graph key."""
    ckpt = _save_tiny(tmp_path / "rx.json")
    be = LinkLevelBackend(_scenario("neural", {"receiver": {"checkpoint": ckpt}}, link_level_batch=2), {0: 1, 1: 2})
    assert type(be.neural) is get_model("deeprx")
    ref = DeepRx.load(ckpt)
    assert len(be.neural_weights) == len(ref.params)
    for w, v in zip(be.neural_weights, ref.params):
        np.testing.assert_array_equal(w, v.numpy())
    assert be.neural.graph_key == ref.graph_key != DeepRx(DeepRxConfig(**{**TINY_RX, "input_filters": 5})).graph_key
    rng = np.random.default_rng(1)
    y = (rng.normal(size=(2, 1, NUM_OFDM_SYMBOLS, 12 * NUM_PRBS))
         + 1j * rng.normal(size=(2, 1, NUM_OFDM_SYMBOLS, 12 * NUM_PRBS))).astype(np.complex64)
    pilots = np.broadcast_to(get_chain(ChainKey(NUM_PRBS, 30, 1, NUM_DMRS, 1, "lmmse", QPSK_MCS)).pilots, (2, *y.shape[2:]))
    no = np.array([0.1, 1.0], np.float32)
    llr = be.neural.llr_grid(y, pilots, no, [tf.constant(w) for w in be.neural_weights])
    assert llr.dtype == tf.float32 and llr.shape == (2, NUM_OFDM_SYMBOLS, 12 * NUM_PRBS, TINY_RX["max_bits_per_symbol"])
    # llr_grid is the forward's XLA form (depthwise convolutions as shifted sums): float rounding apart
    np.testing.assert_allclose(llr.numpy(), ref.receive(y, pilots, no).numpy(), rtol=1e-5, atol=1e-5)


def test_lmmse_receivers_leave_the_comparison_columns_nan():
    be = LinkLevelBackend(_scenario("genie_lmmse", link_level_batch=2), {0: 1, 1: 2})
    tbs = int(bler_table(1, NUM_PRBS, NUM_DMRS).tbs_bits[QPSK_MCS])
    tx = Transmission(0, 0, 0, 0, 1, QPSK_MCS, tbs, 10.0, np.ones((1, 12 * NUM_PRBS), np.complex64))
    be.submit(tx)
    be.resolve(tx)
    assert tx.ack and math.isnan(tx.ber_genie) and math.isnan(tx.ber_ls) and 0 <= tx.ber < 0.01


@pytest.mark.parametrize("change, field, message", [
    ({}, "models.receiver", "needs models.receiver"),
    ({"phy.backend": "abstraction", "models": True}, "phy.receiver", "link_level"),
    ({"phy.receiver": "lmmse", "models": True}, "models.receiver", "only used with phy.receiver: neural"),
    ({"carrier.num_prbs": 6, "models": True}, "models.receiver.checkpoint", "4 PRBs, the scenario 6"),
    ({"phy.num_dmrs_symbols": 2, "models": True}, "models.receiver.checkpoint", "1 DMRS symbols, the scenario 2"),
    ({"phy.num_ue_antennas": 2, "models": True}, "models.receiver.checkpoint", "1 receive antennas, the scenario 2"),
    ({"phy.mcs_table": 2, "models": True}, "models.receiver.checkpoint", "MCS table 2 needs 8"),
])
def test_validation_errors_name_the_field(tmp_path, change, field, message):
    ckpt = _save_tiny(tmp_path / "rx.json")
    doc = {"name": "bad", "duration_s": 0.01, "carrier": {"num_prbs": NUM_PRBS},
           "phy": {"backend": "link_level", "receiver": "neural", "num_dmrs_symbols": NUM_DMRS}, "ues": [{"id": 0}]}
    for key, value in change.items():
        if key == "models":
            doc["models"] = {"receiver": {"checkpoint": ckpt}}
        else:
            section, name = key.split(".")
            doc[section][name] = value
    with pytest.raises(ConfigError) as exc:
        check_files(validate_data(doc))
    assert len(exc.value.errors) == 1
    assert exc.value.errors[0].startswith(field + ":") and message in exc.value.errors[0], exc.value.errors


def test_checkpoint_field_errors(tmp_path):
    other = tmp_path / "other.json"
    other.write_text('{"config": {"model_type": "ff_bler"}, "weights_file": "x.npz", "sha256": ""}')
    base = {"name": "bad", "duration_s": 0.01, "carrier": {"num_prbs": NUM_PRBS},
            "phy": {"backend": "link_level", "receiver": "neural", "num_dmrs_symbols": NUM_DMRS}, "ues": [{"id": 0}]}
    for path, message in ((tmp_path / "missing.json", "no such checkpoint file"), (other, "not a deeprx checkpoint")):
        with pytest.raises(ConfigError) as exc:
            check_files(validate_data({**base, "models": {"receiver": {"checkpoint": str(path)}}}))
        assert exc.value.errors[0].startswith("models.receiver.checkpoint:") and message in exc.value.errors[0]


@pytest.mark.slow
def test_briefly_trained_deeprx_gets_acks_at_high_snr(tmp_path):
    """1,500 Adam steps (~40 s) on 86 QPSK slots of near-flat TDL-A at 10-25 dB: uncoded BER ~0.07
    at 25 dB, far above LS+LMMSE's, yet its LLRs decode the lowest MCS (table 1, QPSK) every time."""
    from models.deeprx.train import DeepRxTrainConfig, train_deeprx
    from simulator.datagen.deeprx import DeepRxDataConfig, draw_samples
    from simulator.engine import Simulation

    data = DeepRxDataConfig(num_prbs=NUM_PRBS, num_dmrs_symbols=NUM_DMRS, mcs=(QPSK_MCS,), channels=("tdl:A",),
                            delay_spread_ns=(10.0, 30.0), snr_db=(10.0, 25.0), num_samples=96, seed=3)
    model = DeepRx(DeepRxConfig(num_rx_ant=1, max_bits_per_symbol=6, input_filters=16,
                                blocks=((16, 1, 1), (16, 2, 3), (16, 1, 1))), seed=0)
    model, _ = train_deeprx(draw_samples(data, range(96)),
                            DeepRxTrainConfig(steps=1500, batch_size=8, learning_rate=3e-3), model=model)
    ckpt = model.save(tmp_path / "rx.json", training={"data_config": data.model_dump(mode="json")})
    sc = validate_data({
        "name": "nrx-trained", "seed": 1, "duration_s": 0.01,
        "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": NUM_PRBS},
        "csi_rs": {"period_ms": 20, "report_delay_ms": 15},
        "phy": {"backend": "link_level", "receiver": "neural", "num_dmrs_symbols": NUM_DMRS, "link_level_batch": 2},
        "channel": {"model": "tdl", "profile": "A", "delay_spread_ns": 20},
        "snr": {"model": "fixed", "snr_db": 25},
        "ues": [{"id": 0, "mobility": {"model": "static"}}],
        "link_adaptation": {"olla": {"enabled": False}},
        "models": {"receiver": {"type": "deeprx", "checkpoint": str(ckpt)}},
    })
    Simulation(sc, tmp_path / "run").run()
    slots = pd.read_parquet(tmp_path / "run" / "slots.parquet")
    assert slots["ack"].mean() >= 0.75, slots[["mcs", "ack", "ber", "ber_ls"]]
    assert slots["ber"].mean() < 0.2 and (slots["ber"] >= slots["ber_ls"]).all()
