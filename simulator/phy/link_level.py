"""Link-level PHY backend: the Sionna NR transport-block chain, batched and XLA-compiled per MCS.

Sionna 1.2.2 has no PDSCH chain, so the PUSCH components stand in for it: CP-OFDM without
transform precoding, one layer, one transmit antenna, DMRS mapping type A with
``phy.num_dmrs_symbols`` single-symbol DMRS (``additional_position = n - 1``) and two CDM
groups without data, i.e. the DMRS symbols carry no data. That is structurally the PDSCH of
the abstraction's tables: the transport-block size of every MCS equals
``simulator.link_adaptation.tables.mcs_entries`` (checked when a chain is built).

Per transmission, inside one ``tf.function(jit_compile=True)`` per MCS (built lazily, cached
per process, one trace per padded batch size):

* payload bits from a stateless RNG seeded by (tf_seed, ue, first slot of the transport
  block), so a retransmission regenerates exactly the same bits and coded bits;
* ``TBEncoder`` (PUSCH, scrambled) -> QAM ``Mapper`` -> ``LayerMapper`` ->
  ``ResourceGridMapper`` with the ``PUSCHPilotPattern`` (the sub-blocks of
  ``PUSCHTransmitter``, composed here so the coded bits are available for the BER);
* frequency-domain channel: ``y = h x + n`` with ``h = tx.h`` [num_ue_ant, num_subcarriers]
  held over the 14 symbols, per-RE noise variance ``no = 10**(-snr_db/10)`` (signal power 1),
  noise from a stateless RNG seeded by (tf_seed, ue, slot, tx_round);
* receiver ``lmmse``: ``PUSCHLSChannelEstimator`` (LS on the DMRS, linear interpolation, as
  ``PUSCHReceiver``'s default) + ``LinearDetector("lmmse", maxlog)``; ``genie_lmmse``: the true
  ``h`` (error variance 0) + the same detector;
* ``LayerDemapper`` -> Chase combining (the LLRs of this transmission are added to the soft
  buffer of the transport block) -> ``TBDecoder`` (20 BP iterations); ``ack`` = TB CRC.

Outputs per transmission:

* ``ber``: uncoded BER of THIS transmission alone (hard decisions on its own LLRs, before
  combining) against the transmitted (scrambled) coded bits;
* ``sinr_eff_db``: EESM, with the MCS's beta from the Sionna SYS table (the same beta as the
  abstraction), of this transmission's per-RE post-LMMSE SINR on the data REs,
  ``sum_rx |h_hat|^2 / (no + err_var)`` (for one stream this is the LMMSE output SINR;
  with genie CSI it is exactly the abstraction's ``snr * sum_rx |h|^2``). It is not
  accumulated over retransmissions.

Batching: ``submit`` only queues; the first ``resolve`` evaluates everything pending, one XLA
call per MCS, padded to ``phy.link_level_batch`` (default num_ues * k1, the most that can be
pending, so each MCS compiles once; XLA compiles per batch shape). That is exact:
HARQ feedback arrives ``k1`` slots after the transmission and nothing decided in between
depends on the outcome, and a retransmission is only submitted after the feedback of the
previous round, i.e. after its soft buffer exists. Every random number is drawn per
transmission from its own seed, so the results do not depend on how transmissions are
grouped into calls.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from simulator.link_adaptation.tables import NUM_OFDM_SYMBOLS, bler_table
from simulator.phy.base import Transmission

# Salts that separate the payload and noise streams derived from the same per-UE seed.
_PAYLOAD_SALT, _NOISE_SALT = 1, 2


@dataclass(frozen=True)
class ChainKey:
    """Everything a compiled chain depends on (one per MCS)."""
    num_prbs: int
    subcarrier_spacing_khz: int
    mcs_table: int
    num_dmrs_symbols: int
    num_ue_ant: int
    receiver: str            # "lmmse" | "genie_lmmse"
    mcs: int


def pusch_config(key: ChainKey):
    """The Sionna ``PUSCHConfig`` of a chain (full-band allocation, 14 symbols, one layer)."""
    from sionna.phy.nr import PUSCHConfig

    pc = PUSCHConfig()
    pc.carrier.subcarrier_spacing = key.subcarrier_spacing_khz
    pc.carrier.n_size_grid = key.num_prbs
    pc.n_size_bwp = key.num_prbs
    pc.mapping_type = "A"
    pc.symbol_allocation = [0, NUM_OFDM_SYMBOLS]
    pc.transform_precoding = False
    pc.dmrs.config_type = 1
    pc.dmrs.length = 1
    pc.dmrs.additional_position = key.num_dmrs_symbols - 1
    pc.dmrs.num_cdm_groups_without_data = 2
    pc.tb.mcs_table = key.mcs_table
    pc.tb.mcs_index = key.mcs
    pc.check_config()
    return pc


class Chain:
    """One MCS of the transport-block chain, callable on a batch (see the module docstring).

    ``__call__(seeds [B, 6] int64 (tf_seed, ue, slot, tx_round, first_slot, harq_process), h [B, A, S]
    complex64, no [B] float32, prev_llr [B, N] float32)`` -> numpy ``(ack [B] bool,
    ber [B] float32, sinr_eff_db [B] float32, llr [B, N] float32)`` where ``llr`` is the
    combined soft buffer (``prev_llr`` + this transmission's LLRs).
    """

    def __init__(self, key: ChainKey):
        import tensorflow as tf
        from sionna.phy.mapping import Mapper
        from sionna.phy.mimo import StreamManagement
        from sionna.phy.nr import (LayerDemapper, LayerMapper, PUSCHLSChannelEstimator, PUSCHPilotPattern,
                                   TBDecoder, TBEncoder)
        from sionna.phy.ofdm import LinearDetector, ResourceGrid, ResourceGridMapper

        self.key = key
        pc = pusch_config(key)
        self.pusch_config = pc
        self.tbs_bits = int(pc.tb_size)
        self.num_coded_bits = int(pc.num_coded_bits)
        self.num_bits_per_symbol = int(pc.tb.num_bits_per_symbol)
        self.num_subcarriers = int(pc.num_subcarriers)
        table = bler_table(key.mcs_table, key.num_prbs, key.num_dmrs_symbols)
        expected = int(table.tbs_bits[key.mcs])
        if self.tbs_bits != expected:
            raise AssertionError(f"PUSCH chain TBS {self.tbs_bits} != tables.py TBS {expected} for {key}")
        self.beta = float(table.beta[key.mcs])
        n_id = pc.tb.n_id if pc.tb.n_id is not None else pc.carrier.n_cell_id
        try:
            self.tb_encoder = TBEncoder(target_tb_size=self.tbs_bits, num_coded_bits=self.num_coded_bits,
                                        target_coderate=pc.tb.target_coderate,
                                        num_bits_per_symbol=self.num_bits_per_symbol, num_layers=1,
                                        n_rnti=pc.n_rnti, n_id=n_id, channel_type="PUSCH", use_scrambler=True)
        except ValueError as exc:
            # Sionna's LDPC5GEncoder has no repetition below its mother code rate 1/5 (MCS 0-1 of
            # table 1, MCS 0 of table 2); the SYS BLER tables do not cover them either, so link
            # adaptation never selects them.
            raise ValueError(f"MCS {key.mcs} of MCS table {key.mcs_table} cannot be simulated at link level: "
                             f"{exc}") from exc
        self.mapper = Mapper("qam", self.num_bits_per_symbol)
        self.layer_mapper = LayerMapper(num_layers=1)
        self.resource_grid = ResourceGrid(
            num_ofdm_symbols=NUM_OFDM_SYMBOLS, fft_size=self.num_subcarriers,
            subcarrier_spacing=key.subcarrier_spacing_khz * 1e3, num_tx=1, num_streams_per_tx=1,
            cyclic_prefix_length=0, pilot_pattern=PUSCHPilotPattern([pc]))
        self.rg_mapper = ResourceGridMapper(self.resource_grid)
        self.estimator = None
        if key.receiver == "lmmse":
            self.estimator = PUSCHLSChannelEstimator(self.resource_grid, pc.dmrs.length, pc.dmrs.additional_position,
                                                     pc.dmrs.num_cdm_groups_without_data, interpolation_type="lin")
        elif key.receiver != "genie_lmmse":
            raise ValueError(f"unknown receiver {key.receiver!r}")
        self.detector = LinearDetector("lmmse", "bit", "maxlog", self.resource_grid,
                                       StreamManagement(np.ones([1, 1], bool), 1), "qam", self.num_bits_per_symbol)
        self.layer_demapper = LayerDemapper(self.layer_mapper, num_bits_per_symbol=self.num_bits_per_symbol)
        self.tb_decoder = TBDecoder(self.tb_encoder)
        dmrs = set(pc.dmrs_symbol_indices)
        self.data_symbols = np.array([s for s in range(NUM_OFDM_SYMBOLS) if s not in dmrs], np.int32)
        self._tf = tf
        # The batch dimension is left open: one trace per MCS (~5 s), one XLA compilation per
        # batch size actually used (~5-25 s, growing with the bandwidth).
        signature = [tf.TensorSpec([None, 6], tf.int64),
                     tf.TensorSpec([None, key.num_ue_ant, self.num_subcarriers], tf.complex64),
                     tf.TensorSpec([None], tf.float32),
                     tf.TensorSpec([None, self.num_coded_bits], tf.float32)]
        self._fn = tf.function(self._run, jit_compile=True, input_signature=signature)
        self.calls = 0              # batched calls made by backends (for benchmarks)
        self.transmissions = 0      # transmissions they carried (padding excluded)

    # -- traced ------------------------------------------------------------------------------
    def _draw(self, seeds, num_ant: int):
        """Per-element payload bits [B, tbs] and unit-variance complex noise [B, A, 14, S]."""
        tf = self._tf
        fold = tf.random.experimental.stateless_fold_in
        shape = [2, num_ant, NUM_OFDM_SYMBOLS, self.num_subcarriers]

        def one(s):
            # payload: (tf_seed, ue, harq, first slot); noise: (tf_seed, ue, harq, slot, round)
            ue_harq = fold(tf.stack([s[0], s[1]]), s[5])
            bits = tf.random.stateless_uniform([self.tbs_bits], fold(fold(ue_harq, _PAYLOAD_SALT), s[4]),
                                               minval=0, maxval=2, dtype=tf.int32)
            w = tf.random.stateless_normal(shape, fold(fold(fold(ue_harq, _NOISE_SALT), s[2]), s[3]))
            return tf.cast(bits, tf.float32), tf.complex(w[0], w[1]) * tf.cast(math.sqrt(0.5), tf.complex64)

        return tf.map_fn(one, seeds, fn_output_signature=(tf.float32, tf.complex64))

    def _run(self, seeds, h, no, prev_llr):
        tf = self._tf
        num_ant = self.key.num_ue_ant
        bits, w = self._draw(seeds, num_ant)
        c = self.tb_encoder(bits[:, None, :])                                  # [B, 1, N]
        x = self.rg_mapper(self.layer_mapper(self.mapper(c)))                   # [B, 1, 1, 14, S]
        y = h[:, :, None, :] * x[:, 0, 0][:, None] + tf.cast(tf.sqrt(no), tf.complex64)[:, None, None, None] * w
        y = y[:, None]                                                          # [B, 1, A, 14, S]
        if self.estimator is None:
            h_hat = tf.broadcast_to(h[:, None, :, None, None, None, :],
                                    [tf.shape(h)[0], 1, num_ant, 1, 1, NUM_OFDM_SYMBOLS, self.num_subcarriers])
            err_var = tf.zeros([], tf.float32)
        else:
            h_hat, err_var = self.estimator(y, no)
        llr = self.layer_demapper(self.detector(y, h_hat, err_var, no))[:, 0]    # [B, N]
        errors = tf.not_equal(tf.cast(llr > 0.0, tf.float32), c[:, 0])
        ber = tf.reduce_mean(tf.cast(errors, tf.float32), axis=-1)
        comb = prev_llr + llr
        _, crc = self.tb_decoder(comb[:, None, :])
        # Post-LMMSE SINR per data RE (one stream): sum_rx |h_hat|^2 / (no + err_var)
        hd = tf.gather(h_hat[:, 0, :, 0, 0], self.data_symbols, axis=2)          # [B, A, Ld, S]
        ev = tf.broadcast_to(err_var, tf.shape(h_hat))
        ev = tf.gather(ev[:, 0, :, 0, 0], self.data_symbols, axis=2)
        sinr = tf.reduce_sum(tf.abs(hd) ** 2 / (no[:, None, None, None] + ev), axis=1)   # [B, Ld, S]
        sinr = tf.reshape(sinr, [tf.shape(sinr)[0], -1])
        s_min = tf.reduce_min(sinr, axis=-1, keepdims=True)
        eesm = s_min[:, 0] - self.beta * tf.math.log(tf.reduce_mean(tf.exp(-(sinr - s_min) / self.beta), axis=-1))
        eesm_db = 10.0 * tf.math.log(tf.maximum(eesm, 1e-30)) / math.log(10.0)
        return crc[:, 0], ber, eesm_db, comb

    # -- host --------------------------------------------------------------------------------
    def __call__(self, seeds, h, no, prev_llr):
        tf = self._tf
        out = self._fn(tf.constant(seeds, tf.int64), tf.constant(h, tf.complex64), tf.constant(no, tf.float32),
                       tf.constant(prev_llr, tf.float32))
        return tuple(o.numpy() for o in out)


@functools.lru_cache(maxsize=None)
def get_chain(key: ChainKey) -> Chain:
    """Chains are cached per process so repeated simulations do not recompile."""
    return Chain(key)


def _bucket(n: int, floor: int) -> int:
    return max(floor, 1 << (n - 1).bit_length())


class LinkLevelBackend:
    name = "link_level"

    def __init__(self, scenario, tf_seeds: dict[int, int]):
        phy, carrier = scenario.phy, scenario.carrier
        self.tf_seeds = {int(u): int(s) for u, s in tf_seeds.items()}
        self.receiver = phy.receiver
        # one XLA compilation per MCS: at most num_ues * k1 transmissions are ever pending
        self.min_batch = int(phy.link_level_batch or len(scenario.ues) * scenario.harq.k1_slots)
        self._key = dict(num_prbs=carrier.num_prbs, subcarrier_spacing_khz=carrier.subcarrier_spacing_khz,
                         mcs_table=phy.mcs_table, num_dmrs_symbols=phy.num_dmrs_symbols,
                         num_ue_ant=phy.num_ue_antennas, receiver=phy.receiver)
        self._pending: list[Transmission] = []
        self._soft: dict[tuple[int, int], np.ndarray] = {}    # (ue, harq) -> combined LLRs [N]
        self._first_slot: dict[tuple[int, int], int] = {}     # (ue, harq) -> slot of the first transmission

    def chain(self, mcs: int) -> Chain:
        return get_chain(ChainKey(mcs=int(mcs), **self._key))

    def submit(self, tx: Transmission) -> None:
        key = (tx.ue, tx.harq_process)
        if tx.tx_round == 1:
            self._first_slot[key] = tx.slot
            self._soft.pop(key, None)
        elif key not in self._first_slot:
            raise RuntimeError(f"retransmission of UE {tx.ue} HARQ {tx.harq_process} without a first transmission")
        self._pending.append(tx)

    def resolve(self, tx: Transmission) -> None:
        if tx.ack is None:
            self.flush()

    def release(self, ue: int, harq_process: int) -> None:
        self._soft.pop((ue, harq_process), None)
        self._first_slot.pop((ue, harq_process), None)

    def flush(self) -> None:
        """Evaluate every pending transmission: one batched call per MCS."""
        pending, self._pending = self._pending, []
        groups: dict[int, list[Transmission]] = {}
        for tx in pending:
            groups.setdefault(tx.mcs, []).append(tx)
        for mcs, txs in groups.items():
            self._evaluate(self.chain(mcs), txs)

    def _evaluate(self, chain: Chain, txs: list[Transmission]) -> None:
        n = len(txs)
        b = _bucket(n, self.min_batch)
        s = chain.num_subcarriers
        seeds = np.zeros((b, 6), np.int64)
        h = np.ones((b, self._key["num_ue_ant"], s), np.complex64)
        no = np.ones(b, np.float32)
        prev = np.zeros((b, chain.num_coded_bits), np.float32)
        for i, tx in enumerate(txs):
            key = (tx.ue, tx.harq_process)
            if tx.tx_round > 1 and key in self._soft:
                prev[i] = self._soft[key]
            seeds[i] = (self.tf_seeds[tx.ue], tx.ue, tx.slot, tx.tx_round, self._first_slot[key], tx.harq_process)
            h[i] = tx.h
            no[i] = 10.0 ** (-tx.snr_db / 10.0)
        ack, ber, sinr_db, llr = chain(seeds, h, no, prev)
        chain.calls += 1
        chain.transmissions += n
        for i, tx in enumerate(txs):
            tx.ack = bool(ack[i])
            tx.ber = float(ber[i])
            tx.sinr_eff_db = float(sinr_db[i])
            self._soft[(tx.ue, tx.harq_process)] = llr[i]
