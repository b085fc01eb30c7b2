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
* receiver ``neural``: a neural receiver (``models.receiver``, e.g. DeepRx) maps the received
  grid, the DMRS pilot grid and ``no`` to an LLR grid [B, 14, S, bits] inside the same compiled
  call; its data-RE LLRs are gathered into the coded-bit order (data REs in (symbol,
  subcarrier) row-major order, as ``ResourceGridMapper`` fills them, the first
  ``bits_per_symbol`` bits of each) and take the LMMSE receivers' place from here on. The
  weights are arguments of the compiled function, so changing them does not recompile. On
  the same received grid (same noise, same channel) the chain also runs LS+LMMSE and genie
  LMMSE and reports their uncoded BER (``ber_ls``, ``ber_genie``);
* ``LayerDemapper`` -> Chase combining (the LLRs of this transmission are added to the soft
  buffer of the transport block) -> ``TBDecoder`` (20 BP iterations); ``ack`` = TB CRC.

Outputs per transmission:

* ``ber``: uncoded BER of THIS transmission alone (hard decisions on its own LLRs, before
  combining) against the transmitted (scrambled) coded bits;
* ``sinr_eff_db``: EESM, with the MCS's beta from the Sionna SYS table (the same beta as the
  abstraction), of this transmission's per-RE post-LMMSE SINR on the data REs,
  ``sum_rx |h_hat|^2 / (no + err_var)`` (for one stream this is the LMMSE output SINR;
  with genie CSI it is exactly the abstraction's ``snr * sum_rx |h|^2``). It is not
  accumulated over retransmissions. With the neural receiver it is the LS+LMMSE value on the
  same grid (the network gives no SINR);
* ``ber_genie``, ``ber_ls`` (neural receiver only, NaN otherwise): the uncoded BER of genie
  LMMSE and LS+LMMSE on this transmission's received grid.

Batching: ``submit`` only queues; the first ``resolve`` evaluates everything pending, one XLA
call per MCS, padded to ``phy.link_level_batch`` (default num_ues * k1, the most that can be
pending, so each MCS compiles once; XLA compiles per batch shape). That is exact:
HARQ feedback arrives ``k1`` slots after the transmission and nothing decided in between
depends on the outcome, and a retransmission is only submitted after the feedback of the
previous round, i.e. after its soft buffer exists. Every random number is drawn per
transmission from its own seed, so the results do not depend on how transmissions are
grouped into calls.

Receiver adaptation (``models.receiver.adaptation``, ``simulator/processes/receiver_adaptation.py``):

* per-UE weights: ``schedule_neural_weights(ue, weights, from_us)`` makes UE ``ue`` receive the
  transmissions with ``t_us >= from_us`` with ``weights``; the choice is made per transmission
  when it is evaluated (transmissions of one MCS with different weights go in separate calls of
  the same compiled chain), so an update arriving between a transmission and its feedback does
  not reach back to it;
* slot records: with ``record_slots(n)`` (off by default, so the hot path keeps nothing) the
  latest n evaluated transmissions of each UE are kept as ``SlotRecord`` (seed row, channel,
  noise variance, BERs). ``slot_arrays`` regenerates their received grids and coded bits with
  ``Chain.received`` (the same stateless draws, compiled the same way) in the layout of a
  deeprx dataset, and ``evaluate_records`` evaluates them again with other weights.
"""
from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, Sequence

import numpy as np

from simulator.link_adaptation.tables import NUM_OFDM_SYMBOLS, bler_table
from simulator.phy.base import Transmission

# Salts that separate the payload and noise streams derived from the same per-UE seed.
_PAYLOAD_SALT, _NOISE_SALT = 1, 2
RECEIVERS = ("lmmse", "genie_lmmse", "neural")


class NeuralReceiver(Protocol):
    """What the chain needs of a neural receiver (``models.deeprx.receiver.DeepRxReceiver``).

    ``llr_grid`` is traced into the chain's XLA function: y [B, A, 14, S] complex64, pilots
    [B, 14, S] complex64 (zero off the DMRS REs), no [B] float32, params (tensors shaped like
    ``weights()``) -> llr [B, 14, S, max_bits_per_symbol], Sionna's sign convention
    ``ln P(b=1) / P(b=0)``. ``graph_key`` is hashable and equal for receivers whose
    ``llr_grid`` traces to the same graph (compiled chains are shared between them)."""
    num_rx_ant: int
    max_bits_per_symbol: int
    graph_key: Any

    def llr_grid(self, y, pilots, no, params: Sequence) -> Any: ...

    def weights(self) -> list[np.ndarray]: ...


class ChainOutput(NamedTuple):
    """``Chain.evaluate``: numpy arrays [B] (``llr`` [B, N]); ``ber_genie``/``ber_ls`` NaN
    unless the receiver is neural."""
    ack: np.ndarray
    ber: np.ndarray
    sinr_eff_db: np.ndarray
    llr: np.ndarray
    ber_genie: np.ndarray
    ber_ls: np.ndarray


@dataclass(frozen=True)
class ChainKey:
    """Everything a compiled chain depends on (one per MCS)."""
    num_prbs: int
    subcarrier_spacing_khz: int
    mcs_table: int
    num_dmrs_symbols: int
    num_ue_ant: int
    receiver: str            # "lmmse" | "genie_lmmse" | "neural"
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
    combined soft buffer (``prev_llr`` + this transmission's LLRs). ``evaluate`` takes the same
    arguments (+ the neural receiver's weights) and returns a :class:`ChainOutput`.
    ``neural``: the receiver of ``key.receiver == "neural"`` (only its graph is used; the
    weights are passed per call).
    """

    def __init__(self, key: ChainKey, neural: NeuralReceiver | None = None):
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
        if key.receiver not in RECEIVERS:
            raise ValueError(f"unknown receiver {key.receiver!r}; valid: {', '.join(RECEIVERS)}")
        if (key.receiver == "neural") != (neural is not None):
            raise ValueError(f"receiver {key.receiver!r} {'needs' if neural is None else 'takes no'} neural receiver")
        self.neural = neural
        if key.receiver in ("lmmse", "neural"):
            self.estimator = PUSCHLSChannelEstimator(self.resource_grid, pc.dmrs.length, pc.dmrs.additional_position,
                                                     pc.dmrs.num_cdm_groups_without_data, interpolation_type="lin")
        self.detector = LinearDetector("lmmse", "bit", "maxlog", self.resource_grid,
                                       StreamManagement(np.ones([1, 1], bool), 1), "qam", self.num_bits_per_symbol)
        self.layer_demapper = LayerDemapper(self.layer_mapper, num_bits_per_symbol=self.num_bits_per_symbol)
        self.tb_decoder = TBDecoder(self.tb_encoder)
        dmrs = set(pc.dmrs_symbol_indices)
        self.data_symbols = np.array([s for s in range(NUM_OFDM_SYMBOLS) if s not in dmrs], np.int32)
        # DMRS grid [14, S] (zero elsewhere) and the data REs in the coded-bit order
        self.pilots = self.rg_mapper(tf.zeros([1, 1, 1, self.resource_grid.num_data_symbols], tf.complex64)
                                     ).numpy()[0, 0, 0].astype(np.complex64)
        self.data_re = np.asarray(self.resource_grid.pilot_pattern.mask)[0, 0] == 0
        self.data_re_index = np.flatnonzero(self.data_re.reshape(-1)).astype(np.int32)
        if self.data_re_index.size * self.num_bits_per_symbol != self.num_coded_bits:
            raise AssertionError(f"{self.data_re_index.size} data REs x {self.num_bits_per_symbol} bits != "
                                 f"{self.num_coded_bits} coded bits for {key}")
        if neural is not None:
            if neural.num_rx_ant != key.num_ue_ant:
                raise ValueError(f"the neural receiver has {neural.num_rx_ant} receive antennas, the chain "
                                 f"{key.num_ue_ant}")
            if neural.max_bits_per_symbol < self.num_bits_per_symbol:
                raise ValueError(f"the neural receiver gives {neural.max_bits_per_symbol} LLRs per RE; MCS "
                                 f"{key.mcs} needs {self.num_bits_per_symbol}")
        self._tf = tf
        # The batch dimension is left open: one trace per MCS (~5 s), one XLA compilation per
        # batch size actually used (~5-25 s, growing with the bandwidth).
        signature = [tf.TensorSpec([None, 6], tf.int64),
                     tf.TensorSpec([None, key.num_ue_ant, self.num_subcarriers], tf.complex64),
                     tf.TensorSpec([None], tf.float32),
                     tf.TensorSpec([None, self.num_coded_bits], tf.float32)]
        if neural is not None:
            signature.append([tf.TensorSpec(w.shape, tf.as_dtype(w.dtype)) for w in neural.weights()])
        self._fn = tf.function(self._run, jit_compile=True, input_signature=signature)
        self._received_fn = None    # built on first use (receiver adaptation only)
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

    def grid_to_coded(self, llr_grid):
        """llr [B, 14, S, W] -> [B, N] in the coded-bit order (the data REs row-major, the first
        ``bits_per_symbol`` of each RE's W LLRs); traceable."""
        tf = self._tf
        b = tf.shape(llr_grid)[0]
        flat = tf.reshape(llr_grid, [b, NUM_OFDM_SYMBOLS * self.num_subcarriers, llr_grid.shape[-1]])
        re = tf.gather(flat, self.data_re_index, axis=1)[..., :self.num_bits_per_symbol]
        return tf.reshape(tf.cast(re, tf.float32), [b, self.num_coded_bits])

    def _detect(self, y, h_hat, err_var, no):
        return self.layer_demapper(self.detector(y, h_hat, err_var, no))[:, 0]      # [B, N]

    def _transmit(self, seeds, h, no):
        """Coded bits c [B, 1, N] and received grid y [B, 1, A, 14, S] of the transmissions ``seeds``."""
        tf = self._tf
        bits, w = self._draw(seeds, self.key.num_ue_ant)
        c = self.tb_encoder(bits[:, None, :])                                  # [B, 1, N]
        x = self.rg_mapper(self.layer_mapper(self.mapper(c)))                   # [B, 1, 1, 14, S]
        y = h[:, :, None, :] * x[:, 0, 0][:, None] + tf.cast(tf.sqrt(no), tf.complex64)[:, None, None, None] * w
        return c, y[:, None]

    def _received(self, seeds, h, no):
        c, y = self._transmit(seeds, h, no)
        return y[:, 0], c[:, 0]

    def _run(self, seeds, h, no, prev_llr, params=None):
        tf = self._tf
        num_ant = self.key.num_ue_ant
        c, y = self._transmit(seeds, h, no)
        batch = tf.shape(h)[0]
        h_genie = tf.broadcast_to(h[:, None, :, None, None, None, :],
                                  [batch, 1, num_ant, 1, 1, NUM_OFDM_SYMBOLS, self.num_subcarriers])

        def ber_of(llr):
            errors = tf.not_equal(tf.cast(llr > 0.0, tf.float32), c[:, 0])
            return tf.reduce_mean(tf.cast(errors, tf.float32), axis=-1)

        nan = tf.fill([batch], tf.constant(math.nan, tf.float32))
        ber_genie, ber_ls = nan, nan
        if self.estimator is None:
            h_hat, err_var = h_genie, tf.zeros([], tf.float32)
        else:
            h_hat, err_var = self.estimator(y, no)
        if self.neural is None:
            llr = self._detect(y, h_hat, err_var, no)
        else:
            pilots = tf.broadcast_to(tf.constant(self.pilots)[None], [batch, NUM_OFDM_SYMBOLS, self.num_subcarriers])
            llr = self.grid_to_coded(self.neural.llr_grid(y[:, 0], pilots, no, params))
            ber_ls = ber_of(self._detect(y, h_hat, err_var, no))
            ber_genie = ber_of(self._detect(y, h_genie, tf.zeros([], tf.float32), no))
        ber = ber_of(llr)
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
        return crc[:, 0], ber, eesm_db, comb, ber_genie, ber_ls

    # -- host --------------------------------------------------------------------------------
    def evaluate(self, seeds, h, no, prev_llr, weights: Sequence[np.ndarray] | None = None) -> ChainOutput:
        """One compiled call; ``weights``: the neural receiver's (default: the current weights of the
        receiver this chain was built with, which may be another receiver of the same graph)."""
        tf = self._tf
        args = [tf.constant(seeds, tf.int64), tf.constant(h, tf.complex64), tf.constant(no, tf.float32),
                tf.constant(prev_llr, tf.float32)]
        if self.neural is not None:
            weights = self.neural.weights() if weights is None else weights
            args.append([tf.constant(w) for w in weights])
        return ChainOutput(*(o.numpy() for o in self._fn(*args)))

    def __call__(self, seeds, h, no, prev_llr):
        return tuple(self.evaluate(seeds, h, no, prev_llr)[:4])

    def received(self, seeds, h, no) -> tuple[np.ndarray, np.ndarray]:
        """The received grid y [B, A, 14, S] complex64 and the coded bits [B, N] float32 (0/1) of the
        transmissions ``seeds`` (the arguments of ``evaluate``): the same stateless draws as the
        chain's own call, compiled the same way, so they are the grids its receivers saw."""
        tf = self._tf
        if self._received_fn is None:
            self._received_fn = tf.function(self._received, jit_compile=True,
                                             input_signature=self._fn.input_signature[:3])
        y, c = self._received_fn(tf.constant(seeds, tf.int64), tf.constant(h, tf.complex64),
                                 tf.constant(no, tf.float32))
        return y.numpy(), c.numpy()


def get_chain(key: ChainKey, neural: NeuralReceiver | None = None) -> Chain:
    """Chains are cached per process so repeated simulations do not recompile; neural chains
    per ``neural.graph_key`` (receivers with the same graph share one; weights are per call)."""
    cache_key = (key, None if neural is None else neural.graph_key)
    if cache_key not in _CHAINS:
        _CHAINS[cache_key] = Chain(key, neural)
    return _CHAINS[cache_key]


_CHAINS: dict[tuple, Chain] = {}


def _bucket(n: int, floor: int) -> int:
    return max(floor, 1 << (n - 1).bit_length())


@dataclass(frozen=True)
class SlotRecord:
    """A resolved transmission as the backend evaluated it: enough to regenerate its received grid
    (``LinkLevelBackend.slot_arrays``) or to evaluate it again with other weights
    (``LinkLevelBackend.evaluate_records``). Kept only while ``record_slots`` is on."""
    ue: int
    slot: int
    t_us: int
    tx_round: int
    mcs: int
    seeds: np.ndarray        # [6] int64, the chain's seed row
    h: np.ndarray            # [A, S] complex64
    no: float
    ber: float
    ber_genie: float


class LinkLevelBackend:
    name = "link_level"

    def __init__(self, scenario, tf_seeds: dict[int, int], neural: NeuralReceiver | None = None):
        """``neural``: the receiver for ``phy.receiver: neural`` (default: loaded from
        ``models.receiver``); the backend keeps its own copy of the weights (``neural_weights``)."""
        phy, carrier = scenario.phy, scenario.carrier
        self.tf_seeds = {int(u): int(s) for u, s in tf_seeds.items()}
        self.receiver = phy.receiver
        self.neural = None
        self.neural_weights: list[np.ndarray] | None = None
        if phy.receiver == "neural":
            if neural is None:
                from models.deeprx.receiver import load_receiver

                cfg = scenario.models.receiver
                if cfg is None:
                    raise ValueError("phy.receiver: neural needs models.receiver")
                neural = load_receiver(cfg.type, cfg.checkpoint)
            self.neural = neural
            self.neural_weights = [np.array(w) for w in neural.weights()]
        elif neural is not None:
            raise ValueError(f"a neural receiver was given but phy.receiver is {phy.receiver!r}")
        # one XLA compilation per MCS: at most num_ues * k1 transmissions are ever pending
        self.min_batch = int(phy.link_level_batch or len(scenario.ues) * scenario.harq.k1_slots)
        self._key = dict(num_prbs=carrier.num_prbs, subcarrier_spacing_khz=carrier.subcarrier_spacing_khz,
                         mcs_table=phy.mcs_table, num_dmrs_symbols=phy.num_dmrs_symbols,
                         num_ue_ant=phy.num_ue_antennas, receiver=phy.receiver)
        self._pending: list[Transmission] = []
        self._soft: dict[tuple[int, int], np.ndarray] = {}    # (ue, harq) -> combined LLRs [N]
        self._first_slot: dict[tuple[int, int], int] = {}     # (ue, harq) -> slot of the first transmission
        self._ue_weights: dict[int, list[tuple[int, list[np.ndarray]]]] = {}   # ue -> [(from_us, weights)]
        self.history: dict[int, deque] | None = None          # ue -> SlotRecords (record_slots)

    # -- per-UE weights and slot records (receiver adaptation) -------------------------------------
    def schedule_neural_weights(self, ue: int, weights: Sequence[np.ndarray], from_us: int) -> None:
        """UE ``ue`` receives with ``weights`` every transmission whose ``t_us >= from_us`` (an update
        that arrives at a slot boundary is used by that slot). Applied when the transmissions are
        evaluated, so it is exact whenever it is called before their feedback is due; ``from_us``
        must not precede an earlier schedule of the same UE."""
        if self.neural is None:
            raise ValueError(f"neural weights for UE {ue} but phy.receiver is {self.receiver!r}")
        sched = self._ue_weights.setdefault(int(ue), [])
        if sched and from_us < sched[-1][0]:
            raise ValueError(f"UE {ue}: weights from {from_us} us precede the ones from {sched[-1][0]} us")
        ref = self.neural_weights
        if len(weights) != len(ref) or any(np.shape(w) != r.shape for w, r in zip(weights, ref)):
            raise ValueError(f"UE {ue}: the weights do not fit the receiver's {len(ref)} tensors")
        sched.append((int(from_us), [np.array(w, r.dtype) for w, r in zip(weights, ref)]))

    def neural_weights_at(self, ue: int, t_us: int) -> list[np.ndarray] | None:
        """The weights UE ``ue`` receives a transmission at ``t_us`` with (default ``neural_weights``)."""
        weights = self.neural_weights
        for from_us, w in self._ue_weights.get(int(ue), ()):
            if from_us > t_us:
                break
            weights = w
        return weights

    def record_slots(self, maxlen: int) -> None:
        """Keep the latest ``maxlen`` evaluated transmissions of every UE (``history[ue]``, SlotRecords,
        oldest first). Off by default: only the receiver adaptation needs them."""
        self.history = defaultdict(lambda: deque(maxlen=int(maxlen)))

    def slot_arrays(self, records: Sequence[SlotRecord], bits_width: int) -> dict[str, np.ndarray]:
        """The received grids of ``records`` in the layout of a deeprx dataset (``models.deeprx.data``):
        index (the slot), y [n, A, 14, S], h, no, snr_db, mcs, bits_per_symbol, bits [n, 14, S, bits_width]
        (the coded bits of each data RE), pilots [14, S], data_re [14, S]. Regenerated from the
        transmissions' seeds by ``Chain.received``, i.e. the grids the UE's receiver saw."""
        n = len(records)
        a = self._key["num_ue_ant"]
        out = None
        for mcs, rows in _by_mcs(records).items():
            chain = self.chain(mcs)
            s = chain.num_subcarriers
            if out is None:
                out = {"index": np.array([r.slot for r in records], np.int64),
                       "y": np.zeros((n, a, NUM_OFDM_SYMBOLS, s), np.complex64),
                       "h": np.stack([r.h for r in records]).astype(np.complex64),
                       "no": np.array([r.no for r in records], np.float32),
                       "snr_db": np.array([-10.0 * math.log10(r.no) for r in records], np.float32),
                       "mcs": np.array([r.mcs for r in records], np.int16),
                       "bits_per_symbol": np.zeros(n, np.int16),
                       "bits": np.zeros((n, NUM_OFDM_SYMBOLS, s, bits_width), np.uint8),
                       "pilots": chain.pilots, "data_re": chain.data_re}
            seeds, h, no = self._padded([records[i] for i in rows], chain)
            y, c = chain.received(seeds, h, no)
            bps = chain.num_bits_per_symbol
            out["y"][rows] = y[:len(rows)]
            out["bits_per_symbol"][rows] = bps
            grid = np.zeros((len(rows), NUM_OFDM_SYMBOLS, s, bits_width), np.uint8)
            grid[:, chain.data_re, :bps] = c[:len(rows)].reshape(len(rows), -1, bps).astype(np.uint8)
            out["bits"][rows] = grid
        return out

    def evaluate_records(self, records: Sequence[SlotRecord], weights: Sequence[np.ndarray]) -> ChainOutput:
        """The chain's outputs on the transmissions of ``records`` (same received grids) received with
        ``weights`` instead, each alone (an empty soft buffer: ``ack`` is that of this transmission
        alone, ``ber`` is unaffected). Arrays [n] in the order of ``records``."""
        n = len(records)
        out = {f: np.zeros(n, np.float32) for f in ChainOutput._fields if f != "llr"}
        out["ack"] = np.zeros(n, bool)
        for mcs, rows in _by_mcs(records).items():
            chain = self.chain(mcs)
            seeds, h, no = self._padded([records[i] for i in rows], chain)
            res = chain.evaluate(seeds, h, no, np.zeros((len(seeds), chain.num_coded_bits), np.float32), weights)
            for f in out:
                out[f][rows] = getattr(res, f)[:len(rows)]
        return ChainOutput(llr=None, **out)

    def _batch(self, n: int, chain: Chain):
        """Zeroed seeds [b, 6], h [b, A, S] and no [b] for n transmissions, padded to the bucketed
        batch size b (the batch sizes the chain compiles; padding rows: unit channel and noise)."""
        b = _bucket(n, self.min_batch)
        return (np.zeros((b, 6), np.int64), np.ones((b, self._key["num_ue_ant"], chain.num_subcarriers), np.complex64),
                np.ones(b, np.float32))

    def _padded(self, records: Sequence[SlotRecord], chain: Chain):
        seeds, h, no = self._batch(len(records), chain)
        for i, r in enumerate(records):
            seeds[i], h[i], no[i] = r.seeds, r.h, r.no
        return seeds, h, no

    def chain(self, mcs: int) -> Chain:
        return get_chain(ChainKey(mcs=int(mcs), **self._key), self.neural)

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
        """Evaluate every pending transmission: one batched call per MCS (and per set of neural
        weights, when UEs receive with different ones)."""
        pending, self._pending = self._pending, []
        groups: dict[tuple[int, int], tuple[list | None, list[Transmission]]] = {}
        for tx in pending:
            w = self.neural_weights_at(tx.ue, tx.t_us) if self._ue_weights else self.neural_weights
            groups.setdefault((tx.mcs, id(w)), (w, []))[1].append(tx)
        for (mcs, _), (w, txs) in groups.items():
            self._evaluate(self.chain(mcs), txs, w)

    def _evaluate(self, chain: Chain, txs: list[Transmission], weights: list | None = None) -> None:
        n = len(txs)
        seeds, h, no = self._batch(n, chain)
        prev = np.zeros((len(seeds), chain.num_coded_bits), np.float32)
        for i, tx in enumerate(txs):
            key = (tx.ue, tx.harq_process)
            if tx.tx_round > 1 and key in self._soft:
                prev[i] = self._soft[key]
            seeds[i] = (self.tf_seeds[tx.ue], tx.ue, tx.slot, tx.tx_round, self._first_slot[key], tx.harq_process)
            h[i] = tx.h
            no[i] = 10.0 ** (-tx.snr_db / 10.0)
        out = chain.evaluate(seeds, h, no, prev, self.neural_weights if weights is None else weights)
        chain.calls += 1
        chain.transmissions += n
        for i, tx in enumerate(txs):
            tx.ack = bool(out.ack[i])
            tx.ber = float(out.ber[i])
            tx.ber_genie = float(out.ber_genie[i])
            tx.ber_ls = float(out.ber_ls[i])
            tx.sinr_eff_db = float(out.sinr_eff_db[i])
            self._soft[(tx.ue, tx.harq_process)] = out.llr[i]
            if self.history is not None:
                self.history[tx.ue].append(SlotRecord(tx.ue, tx.slot, tx.t_us, tx.tx_round, tx.mcs, seeds[i].copy(),
                                                      h[i].copy(), float(no[i]), tx.ber, tx.ber_genie))


def _by_mcs(records: Sequence[SlotRecord]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(int(r.mcs), []).append(i)
    return groups
