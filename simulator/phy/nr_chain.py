"""The Sionna NR transport-block chain of the link_level backend, one per MCS, layer count, allocation
size (``ChainKey.num_prbs``) and co-scheduled stream count, XLA-compiled in a few programs (below).

Sionna 1.2.2 has no PDSCH chain, so the PUSCH components stand in for it: CP-OFDM without
transform precoding, one or two layers (``ChainKey.num_layers``) carrying one codeword, one
antenna port per layer with no precoding inside the chain (the gNB's precoder is already in
``tx.h``), DMRS mapping type A with
``phy.num_dmrs_symbols`` single-symbol DMRS (``additional_position = n - 1``) and two CDM
groups without data, i.e. the DMRS symbols carry no data; two layers use DMRS ports 0 and 1,
code-division multiplexed (OCC ``w_f``) on the same REs of CDM group 0. That is structurally the
PDSCH of the abstraction's tables: the transport-block size of every MCS equals
``simulator.link_adaptation.tables.mcs_entries`` on the chain's layers (checked when a chain is built). The chain
is the one definition of the DMRS pilot grid (``Chain.pilots``) and of the data REs
(``Chain.data_re``, ``Chain.data_re_index``); training data and neural receivers get them
from it.

Per transmission, in programs (``tf.function``, built lazily, cached per process, one trace per program,
XLA-compiled ones once per padded batch size) called in turn, the tensors staying where they are:

* per MCS, the **draws** (payload bits, noise, co-scheduled symbols), in graph mode, not XLA:
  TensorFlow's stateless kernels draw them faster than XLA's lowering on CPU, and need no compilation;
* per MCS, the **encoder** (payload bits -> coded bits c [B, N]);
* the **link** (``LinkProgram``: mapping, channel, estimation, detection, BERs, EESM), shared by every
  MCS of one modulation order: it depends on the MCS only through the coded bits and the EESM's beta,
  both arguments, so a new MCS of a modulation order already in use compiles only its encoder and
  decoder (``tests/benchmarks/bench_xla_cache.py`` measures what a new MCS costs);
* the neural receiver's network (``neural_program``, one per graph and grid, shared by every MCS);
* per MCS, the **decoder** (combining, ``TBDecoder``; the neural chain's also gathers the network's
  LLRs into the coded-bit order).

What they compute:

* payload bits from a stateless RNG seeded by (tf_seed, ue, first slot of the transport
  block), so a retransmission regenerates exactly the same bits and coded bits;
* ``TBEncoder`` (PUSCH, scrambled) -> QAM ``Mapper`` -> ``LayerMapper`` ->
  ``ResourceGridMapper`` with the ``PUSCHPilotPattern`` (the sub-blocks of
  ``PUSCHTransmitter``, composed here so the coded bits are available for the BER);
* frequency-domain channel: ``y = h x + n`` with ``h = tx.h`` [num_ue_ant, num_subcarriers]
  held over the 14 symbols, per-RE noise variance ``no = 10**(-snr_db/10)`` (signal power 1),
  noise from a stateless RNG seeded by (tf_seed, ue, harq, slot, tx_round). Two layers: ``h = tx.h``
  [num_ue_ant, 2, num_subcarriers] (one precoded stream H w_l per layer) and
  ``y = sum_l h_l x_l sqrt(1/2) + n``. Power convention: Sionna's ``LayerMapper`` only reorders
  symbols and, without codebook precoding, every layer leaves the ``ResourceGridMapper`` at the
  power of a one-layer transmission (unit-energy QAM; its DMRS port at ``dmrs.beta**2 = 2`` on the
  REs of its CDM group), so the chain splits the transmit power over the layers itself, DMRS and
  data alike: the total stays 1 and ``snr_db`` keeps the abstraction's definition
  (``simulator.phy.precoding.layer_sinr``, power split equally over the layers);
* MU-MIMO (``ChainKey.num_interferers`` J > 0, one layer): ``h_int`` [num_ue_ant, J, num_subcarriers],
  the co-scheduled streams' precoded channels at this UE, each carrying unit-power complex Gaussian
  symbols on the data REs (seeded like the noise; none on the DMRS symbols: the co-scheduled DMRS
  ports are orthogonal to the UE's). The UE knows their covariance: after channel estimation, y and
  h_hat are whitened per subcarrier by sqrt(no) L^-1, R = no I + sum_j h_j h_j^H = L L^H, so the
  detector's white noise ``no`` stands for noise plus interference (interference-aware LMMSE, the
  abstraction's ``mu_sinr``);
* receiver ``lmmse``: ``PUSCHLSChannelEstimator`` (LS on the DMRS, linear interpolation, as
  ``PUSCHReceiver``'s default; with two ports it separates them by averaging over each OCC pair
  of subcarriers) + ``LinearDetector("lmmse", maxlog)`` (two layers: both streams of one
  transmitter, ``StreamManagement(np.ones([1, 1]), 2)``); ``genie_lmmse``: the true per-layer
  channels (times sqrt(1/num_layers), error variance 0) + the same detector;
* receiver ``neural`` (one layer only): a neural receiver (``models.base.NeuralReceiver``, e.g. DeepRx) maps the
  received grid, the DMRS pilot grid and ``no`` to an LLR grid [B, 14, S, bits] inside the same
  compiled call; its data-RE LLRs are gathered into the coded-bit order (data REs in (symbol,
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
  with genie CSI it is exactly the abstraction's ``snr * sum_rx |h|^2``). Two layers: over both
  layers' REs, ``1 / [(I + G^H G)^-1]_ll - 1`` with G the estimated per-layer channels whitened by
  the detector's noise ``no + sum_l err_var_l`` per receive antenna (the SINR of Sionna's LMMSE
  equaliser); with genie CSI exactly the abstraction's ``layer_sinr``. It is not
  accumulated over retransmissions. With the neural receiver it is the LS+LMMSE value on the
  same grid (the network gives no SINR);
* ``ber_genie``, ``ber_ls`` (neural receiver only, NaN otherwise): the uncoded BER of genie
  LMMSE and LS+LMMSE on this transmission's received grid.

Every random number is drawn per transmission from its own seed, so the results do not depend
on how transmissions are grouped into calls; ``Chain.received`` regenerates the received grid
and coded bits of a transmission from the same seeds.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence

import numpy as np

from models.base import NeuralReceiver
from simulator.link_adaptation.tables import NUM_OFDM_SYMBOLS, bler_table
from simulator.phy.stable_names import stable_names

# Salts that separate the payload, noise and interference streams derived from the same per-UE seed.
_PAYLOAD_SALT, _NOISE_SALT, _INTERFERENCE_SALT = 1, 2, 3
RECEIVERS = ("lmmse", "genie_lmmse", "neural")


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
    """Everything a compiled chain depends on (one per MCS and layer count)."""
    num_prbs: int
    subcarrier_spacing_khz: int
    mcs_table: int
    num_dmrs_symbols: int
    num_ue_ant: int
    receiver: str            # "lmmse" | "genie_lmmse" | "neural"
    mcs: int
    num_layers: int = 1      # 1 | 2 (<= num_ue_ant; one codeword over both)
    num_interferers: int = 0  # co-scheduled MU-MIMO streams received beside the UE's own (one layer)


def pusch_config(key: ChainKey):
    """The Sionna ``PUSCHConfig`` of a chain (full-band allocation, 14 symbols, ``key.num_layers``
    layers on as many antenna ports, non-codebook: no precoding; DMRS ports 0..num_layers-1)."""
    from sionna.phy.nr import PUSCHConfig

    pc = PUSCHConfig()
    pc.carrier.subcarrier_spacing = key.subcarrier_spacing_khz
    pc.carrier.n_size_grid = key.num_prbs
    pc.n_size_bwp = key.num_prbs
    pc.mapping_type = "A"
    pc.symbol_allocation = [0, NUM_OFDM_SYMBOLS]
    pc.transform_precoding = False
    pc.num_layers = key.num_layers
    pc.num_antenna_ports = key.num_layers
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
    complex64 (two layers: [B, A, 2, S]), no [B] float32, prev_llr [B, N] float32)`` -> numpy ``(ack [B] bool,
    ber [B] float32, sinr_eff_db [B] float32, llr [B, N] float32)`` where ``llr`` is the
    combined soft buffer (``prev_llr`` + this transmission's LLRs). ``evaluate`` takes the same
    arguments (+ the neural receiver's weights) and returns a :class:`ChainOutput`.
    ``neural``: the receiver of ``key.receiver == "neural"`` (only its graph is used; the
    weights are passed per call).
    """

    def __init__(self, key: ChainKey, neural: NeuralReceiver | None = None):
        import tensorflow as tf

        from simulator.phy.ldpc_updates import cn_update_phi, vn_update_sum
        from simulator.phy.scrambling_cache import install

        install()                  # Sionna's scrambler rebuilds its sequence at every trace: cache it
        from sionna.phy.mapping import Mapper
        from sionna.phy.mimo import StreamManagement
        from sionna.phy.nr import (LayerDemapper, LayerMapper, PUSCHLSChannelEstimator, PUSCHPilotPattern,
                                   TBDecoder, TBEncoder)
        from sionna.phy.ofdm import LinearDetector, ResourceGrid, ResourceGridMapper

        if key.num_layers not in (1, 2) or key.num_layers > key.num_ue_ant:
            raise ValueError(f"num_layers {key.num_layers}: the chain transmits 1 or 2 layers, at most one per UE "
                             f"antenna ({key.num_ue_ant})")
        if key.num_interferers < 0 or (key.num_interferers and key.num_layers > 1):
            raise ValueError(f"num_interferers {key.num_interferers}: co-scheduled streams interfere with one-layer "
                             f"transmissions only (num_layers {key.num_layers})")
        if key.num_layers > 1 and (key.receiver == "neural" or neural is not None):
            raise ValueError(f"the neural receiver is one-layer; num_layers {key.num_layers} needs receiver "
                             f"lmmse or genie_lmmse")
        self.key = key
        pc = pusch_config(key)
        self.pusch_config = pc
        self.tbs_bits = int(pc.tb_size)
        self.num_coded_bits = int(pc.num_coded_bits)
        self.num_bits_per_symbol = int(pc.tb.num_bits_per_symbol)
        self.num_subcarriers = int(pc.num_subcarriers)
        table = bler_table(key.mcs_table, key.num_prbs, key.num_dmrs_symbols, num_layers=key.num_layers)
        expected = int(table.tbs_bits[key.mcs])
        if self.tbs_bits != expected:
            raise AssertionError(f"PUSCH chain TBS {self.tbs_bits} != tables.py TBS {expected} for {key}")
        self.beta = float(table.beta[key.mcs])
        n_id = pc.tb.n_id if pc.tb.n_id is not None else pc.carrier.n_cell_id
        try:
            self.tb_encoder = TBEncoder(target_tb_size=self.tbs_bits, num_coded_bits=self.num_coded_bits,
                                        target_coderate=pc.tb.target_coderate,
                                        num_bits_per_symbol=self.num_bits_per_symbol, num_layers=key.num_layers,
                                        n_rnti=pc.n_rnti, n_id=n_id, channel_type="PUSCH", use_scrambler=True)
        except ValueError as exc:
            # Sionna's LDPC5GEncoder has no repetition below its mother code rate 1/5 (MCS 0-1 of
            # table 1, MCS 0 of table 2); the SYS BLER tables do not cover them either, so link
            # adaptation never selects them.
            raise ValueError(f"MCS {key.mcs} of MCS table {key.mcs_table} cannot be simulated at link level: "
                             f"{exc}") from exc
        self.mapper = Mapper("qam", self.num_bits_per_symbol)
        self.layer_mapper = LayerMapper(num_layers=key.num_layers)
        self.resource_grid = ResourceGrid(
            num_ofdm_symbols=NUM_OFDM_SYMBOLS, fft_size=self.num_subcarriers,
            subcarrier_spacing=key.subcarrier_spacing_khz * 1e3, num_tx=1, num_streams_per_tx=key.num_layers,
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
                                       StreamManagement(np.ones([1, 1], bool), key.num_layers), "qam",
                                       self.num_bits_per_symbol)
        self.layer_demapper = LayerDemapper(self.layer_mapper, num_bits_per_symbol=self.num_bits_per_symbol)
        # Sionna's own node updates, with reductions XLA lowers in ~1 s instead of ~15 s (same bits)
        self.tb_decoder = TBDecoder(self.tb_encoder, cn_update=cn_update_phi, vn_update=vn_update_sum)
        dmrs = set(pc.dmrs_symbol_indices)
        self.data_symbols = np.array([s for s in range(NUM_OFDM_SYMBOLS) if s not in dmrs], np.int32)
        # DMRS grid [14, S] of layer 0's port (zero elsewhere) and the data REs (the same on every
        # layer) in the coded-bit order of each layer
        self.pilots = self.rg_mapper(tf.zeros([1, 1, key.num_layers, self.resource_grid.num_data_symbols],
                                              tf.complex64)).numpy()[0, 0, 0].astype(np.complex64)
        self.data_re = np.asarray(self.resource_grid.pilot_pattern.mask)[0, 0] == 0
        self.data_re_index = np.flatnonzero(self.data_re.reshape(-1)).astype(np.int32)
        if self.data_re_index.size * self.num_bits_per_symbol * key.num_layers != self.num_coded_bits:
            raise AssertionError(f"{self.data_re_index.size} data REs x {self.num_bits_per_symbol} bits x "
                                 f"{key.num_layers} layers != {self.num_coded_bits} coded bits for {key}")
        if neural is not None:
            if neural.num_rx_ant != key.num_ue_ant:
                raise ValueError(f"the neural receiver has {neural.num_rx_ant} receive antennas, the chain "
                                 f"{key.num_ue_ant}")
            if neural.max_bits_per_symbol < self.num_bits_per_symbol:
                raise ValueError(f"the neural receiver gives {neural.max_bits_per_symbol} LLRs per RE; MCS "
                                 f"{key.mcs} needs {self.num_bits_per_symbol}")
        self._tf = tf
        self._beta_tensor = tf.constant(self.beta, tf.float32)
        n = self.num_coded_bits
        seeds_spec = tf.TensorSpec([None, 6], tf.int64)
        # autograph=False: the chain has no tensor-dependent Python control flow, and autograph's
        # conversion of every Sionna function it reaches cost ~10 s of each first trace (same graph).
        # The batch dimension is left open: one trace per program, one XLA compilation per batch size
        # actually used. Per MCS: the encoder and the decoder; the link between them (LinkProgram) is
        # shared by every MCS of the same modulation order (see the module docstring).
        # The random draws are not XLA-compiled: in graph mode TensorFlow's stateless kernels draw them
        # ~3x faster than XLA's lowering on CPU and need no compilation (a while loop over the batch
        # cost ~0.4-0.6 s of each program's compilation); only the trace (~0.03 s) is paid per MCS.
        self._draw_fn = tf.function(self._draw, jit_compile=False, autograph=False, input_signature=[seeds_spec])
        self._encode_fn = tf.function(self._encode, jit_compile=True, autograph=False,
                                      input_signature=[tf.TensorSpec([None, self.tbs_bits], tf.float32)])
        self._link = link_program(self)
        self._decode_fn = self._back_fn = self._neural_program = None
        if neural is None:
            self._decode_fn = tf.function(self._decode, jit_compile=True, autograph=False, input_signature=[
                tf.TensorSpec([None, n], tf.float32), tf.TensorSpec([None, n], tf.float32)])
        else:
            width = neural.max_bits_per_symbol
            self._back_fn = tf.function(
                self._back, jit_compile=True, autograph=False,
                input_signature=[tf.TensorSpec([None, NUM_OFDM_SYMBOLS, self.num_subcarriers, width], tf.float32),
                                 tf.TensorSpec([None, n], tf.float32),
                                 tf.TensorSpec([None, n], tf.float32)])
            self._neural_program = neural_program(neural, key.num_ue_ant, self.num_subcarriers)
            self._pilots_tensor = tf.constant(self.pilots)     # converted once, not at every call
        self._traced = False        # programs traced (under stable_names, so the XLA cache finds them)
        self.calls = 0              # batched calls made by backends (for benchmarks)
        self.transmissions = 0      # transmissions they carried (padding excluded)
        self.compiled_batches: set[int] = set()    # batch sizes called at least once (compiled)

    @property
    def h_shape(self) -> tuple[int, ...]:
        """The shape of one transmission's ``h``: (A, S), two layers (A, 2, S)."""
        layers = () if self.key.num_layers == 1 else (self.key.num_layers,)
        return (self.key.num_ue_ant, *layers, self.num_subcarriers)

    @property
    def h_int_shape(self) -> tuple[int, ...]:
        """The shape of one transmission's interfering channels ``h_int``: (A, J, S)."""
        return (self.key.num_ue_ant, self.key.num_interferers, self.num_subcarriers)

    # -- traced: per MCS ---------------------------------------------------------------------
    def _draw(self, seeds):
        """The transmissions' random draws, each from its own stateless seed (graph mode, not XLA):
        payload bits [B, tbs] (0/1 float32) seeded by (tf_seed, ue, harq, first slot), unit-variance
        complex noise [B, A, 14, S] seeded by (tf_seed, ue, harq, slot, round) and, with co-scheduled
        streams, their unit-power complex Gaussian symbols [B, J, 14, S] (seeded like the noise, another salt)."""
        tf = self._tf
        fold = tf.random.experimental.stateless_fold_in
        noise_shape = [2, self.key.num_ue_ant, NUM_OFDM_SYMBOLS, self.num_subcarriers]
        int_shape = [2, self.key.num_interferers, NUM_OFDM_SYMBOLS, self.num_subcarriers]
        half = tf.cast(math.sqrt(0.5), tf.complex64)

        def one(s):
            ue_harq = fold(tf.stack([s[0], s[1]]), s[5])
            bits = tf.random.stateless_uniform([self.tbs_bits], fold(fold(ue_harq, _PAYLOAD_SALT), s[4]),
                                               minval=0, maxval=2, dtype=tf.int32)
            w = tf.random.stateless_normal(noise_shape, fold(fold(fold(ue_harq, _NOISE_SALT), s[2]), s[3]))
            out = [tf.cast(bits, tf.float32), tf.complex(w[0], w[1]) * half]
            if self.key.num_interferers:
                v = tf.random.stateless_normal(int_shape, fold(fold(fold(ue_harq, _INTERFERENCE_SALT), s[2]), s[3]))
                out.append(tf.complex(v[0], v[1]) * half)
            return tuple(out)

        sig = (tf.float32, tf.complex64) + ((tf.complex64,) if self.key.num_interferers else ())
        return tf.map_fn(one, seeds, fn_output_signature=sig)

    def _encode(self, bits):
        """Payload bits [B, tbs] -> coded bits c [B, N] (0/1 float32) through the ``TBEncoder``."""
        return self.tb_encoder(bits[:, None, :])[:, 0]

    def _decode(self, llr, prev_llr):
        """This transmission's LLRs [B, N] -> (crc [B], combined soft buffer [B, N])."""
        comb = prev_llr + llr
        _, crc = self.tb_decoder(comb[:, None, :])
        return crc[:, 0], comb

    def _back(self, llr_grid, c, prev_llr):
        """The neural receiver's last program: its LLR grid [B, 14, S, W] -> (crc, ber, comb)."""
        llr = self.grid_to_coded(llr_grid)
        crc, comb = self._decode(llr, prev_llr)
        return crc, self._ber(llr, c), comb

    # -- traced: per modulation order (LinkProgram) ------------------------------------------
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

    def _layer_channels(self, h):
        """Two layers: h [B, A, 2, S] -> the channels the layers' unit-power grids see, h sqrt(1/2)
        (the transmit power split over the layers; see the module docstring)."""
        return h * self._tf.cast(math.sqrt(1.0 / self.key.num_layers), h.dtype)

    def _transmit(self, c, w, h, no, v=None, h_int=None):
        """The received grid y [B, 1, A, 14, S] of the coded bits c [B, N] through h with the noise w
        [B, A, 14, S] (``_draw``); ``h_int`` [B, A, J, S]: the co-scheduled streams' channels, each
        carrying the unit-power symbols v [B, J, 14, S] on the data REs (their DMRS ports are orthogonal
        to the UE's: nothing on the DMRS)."""
        tf = self._tf
        x = self.rg_mapper(self.layer_mapper(self.mapper(c[:, None, :])))       # [B, 1, L, 14, S]
        if self.key.num_layers == 1:
            s = h[:, :, None, :] * x[:, 0, 0][:, None]
        else:                                                                   # sum_l h_l x_l sqrt(1/L)
            s = tf.reduce_sum(self._layer_channels(h)[:, :, :, None, :] * x[:, 0][:, None], axis=2)
        if h_int is not None:
            v = v * tf.constant(self.data_re.astype(np.complex64))                  # data REs only
            s = s + tf.reduce_sum(h_int[:, :, :, None, :] * v[:, None], axis=2)
        y = s + tf.cast(tf.sqrt(no), tf.complex64)[:, None, None, None] * w
        return y[:, None]

    def _whiten(self, y, h_hat, err_var, no, h_int):
        """Interference-aware LMMSE through Sionna's detector: per subcarrier, R = no I + sum_j h_j h_j^H
        (the co-scheduled streams' covariance, known to the UE: their precoded channels, as the
        abstraction's ``mu_sinr`` assumes) and y, h_hat -> sqrt(no) L^-1 (.) with R = L L^H, so the
        detector's white noise ``no`` stands for noise plus interference. One UE antenna: the scale
        sqrt(no / (no + sum_j |h_j|^2)). The error variance of h_hat is scaled alike (per antenna, its
        cross terms dropped). Applied on every symbol; the detector reads the data symbols only."""
        tf = self._tf
        num_ant = self.key.num_ue_ant
        nc = tf.cast(no, tf.complex64)
        r = tf.einsum("bajs,bcjs->bsac", h_int, tf.math.conj(h_int))              # [B, S, A, A]
        r = r + nc[:, None, None, None] * tf.eye(num_ant, dtype=tf.complex64)
        if num_ant == 1:
            scale = tf.sqrt(tf.cast(no, tf.float32)[:, None] / tf.math.real(r[:, :, 0, 0]))   # [B, S]
            sc = tf.cast(scale, tf.complex64)
            ev = tf.broadcast_to(err_var, tf.shape(h_hat)) * (scale ** 2)[:, None, None, None, None, None, :]
            return y * sc[:, None, None, None, :], h_hat * sc[:, None, None, None, None, None, :], ev
        chol = tf.linalg.cholesky(r)                                              # [B, S, A, A]
        wt = tf.linalg.triangular_solve(chol, tf.eye(num_ant, batch_shape=tf.shape(r)[:2], dtype=tf.complex64))
        wt = wt * tf.cast(tf.sqrt(no), tf.complex64)[:, None, None, None]          # sqrt(no) L^-1
        y_w = tf.einsum("bsac,bxcts->bxats", wt, y)
        h_w = tf.einsum("bsac,bxcylts->bxaylts", wt, h_hat)
        ev = tf.broadcast_to(err_var, tf.shape(h_hat))
        gain2 = tf.math.real(wt * tf.math.conj(wt))                                # [B, S, A, A] |wt_ac|^2
        ev_w = tf.einsum("bsac,bxcylts->bxaylts", gain2, ev)
        return y_w, h_w, ev_w

    def _receive(self, c, w, h, no, v, h_int):
        """Transmit and estimate: the received grid y_rx [B, 1, A, 14, S] (what a neural receiver sees),
        the detector's inputs y, h_hat, err_var (whitened when there are co-scheduled streams) and the
        genie channels h_genie [B, 1, A, 1, L, 14, S] (whitened alike)."""
        tf = self._tf
        num_ant = self.key.num_ue_ant
        num_layers = self.key.num_layers
        y = self._transmit(c, w, h, no, v, h_int)
        batch = tf.shape(h)[0]
        h_layers = h[:, :, None, :] if num_layers == 1 else self._layer_channels(h)          # [B, A, L, S]
        h_genie = tf.broadcast_to(h_layers[:, None, :, None, :, None, :],
                                  [batch, 1, num_ant, 1, num_layers, NUM_OFDM_SYMBOLS, self.num_subcarriers])
        if self.estimator is None:
            h_hat, err_var = h_genie, tf.zeros([], tf.float32)
        else:
            h_hat, err_var = self.estimator(y, no)
        y_rx = y
        if h_int is not None:
            y, h_hat, err_var = self._whiten(y, h_hat, err_var, no, h_int)
            _, h_genie, _ = self._whiten(y_rx, h_genie, tf.zeros([], tf.float32), no, h_int)
        return y_rx, y, h_hat, err_var, h_genie

    def _ber(self, llr, c):
        """Uncoded BER [B] of the hard decisions on llr [B, N] against the coded bits c [B, N]."""
        tf = self._tf
        errors = tf.not_equal(tf.cast(llr > 0.0, tf.float32), c)
        return tf.reduce_mean(tf.cast(errors, tf.float32), axis=-1)

    def _eesm_db(self, h_hat, err_var, no, beta):
        """EESM [B] in dB of the post-LMMSE SINRs with the MCS's ``beta`` (a scalar tensor)."""
        tf = self._tf
        sinr = self._post_lmmse_sinr(h_hat, err_var, no)
        s_min = tf.reduce_min(sinr, axis=-1, keepdims=True)
        eesm = s_min[:, 0] - beta * tf.math.log(tf.reduce_mean(tf.exp(-(sinr - s_min) / beta), axis=-1))
        return 10.0 * tf.math.log(tf.maximum(eesm, 1e-30)) / math.log(10.0)

    def _link_lmmse(self, c, w, h, no, beta, *extra):
        """The LMMSE receivers' link: (llr [B, N], ber [B], sinr_eff_db [B]); extra: the co-scheduled
        streams' symbols v [B, J, 14, S] and channels ``h_int`` [B, A, J, S] when ``num_interferers`` > 0."""
        _, y, h_hat, err_var, _ = self._receive(c, w, h, no, *(extra or (None, None)))
        llr = self._detect(y, h_hat, err_var, no)
        return llr, self._ber(llr, c), self._eesm_db(h_hat, err_var, no, beta)

    def _link_front(self, c, w, h, no, beta, *extra):
        """The neural receiver's link, before the network: (y_rx [B, A, 14, S], ber_ls [B], ber_genie [B],
        sinr_eff_db [B]); extra: v and ``h_int`` when ``num_interferers`` > 0 (as ``_link_lmmse``)."""
        tf = self._tf
        y_rx, y, h_hat, err_var, h_genie = self._receive(c, w, h, no, *(extra or (None, None)))
        ber_ls = self._ber(self._detect(y, h_hat, err_var, no), c)
        ber_genie = self._ber(self._detect(y, h_genie, tf.zeros([], tf.float32), no), c)
        return y_rx[:, 0], ber_ls, ber_genie, self._eesm_db(h_hat, err_var, no, beta)

    def _link_received(self, c, w, h, no):
        """The received grid y [B, A, 14, S] alone."""
        return self._transmit(c, w, h, no)[:, 0]

    def _post_lmmse_sinr(self, h_hat, err_var, no):
        """Per data RE (and layer) post-LMMSE SINR [B, L * Ld * S] (layer-major) from the channel
        estimate h_hat [B, 1, A, 1, L, 14, S] and its error variance (broadcastable to h_hat)."""
        tf = self._tf
        ev = tf.broadcast_to(err_var, tf.shape(h_hat))
        if self.key.num_layers == 1:
            # one stream: sum_rx |h_hat|^2 / (no + err_var)
            hd = tf.gather(h_hat[:, 0, :, 0, 0], self.data_symbols, axis=2)          # [B, A, Ld, S]
            ev = tf.gather(ev[:, 0, :, 0, 0], self.data_symbols, axis=2)
            sinr = tf.reduce_sum(tf.abs(hd) ** 2 / (no[:, None, None, None] + ev), axis=1)   # [B, Ld, S]
            return tf.reshape(sinr, [tf.shape(sinr)[0], -1])
        # two layers: G = h_hat / sqrt(no + sum_l err_var_l) per receive antenna (the detector's noise);
        # SINR_l = 1 / [(I + G^H G)^-1]_ll - 1, i.e. ||g_0||^2 - |g_0^H g_1|^2 / (1 + ||g_1||^2) and vice versa
        hd = tf.gather(h_hat[:, 0, :, 0], self.data_symbols, axis=3)                 # [B, A, 2, Ld, S]
        nv = no[:, None, None, None] + tf.reduce_sum(tf.gather(ev[:, 0, :, 0], self.data_symbols, axis=3), axis=2)
        g = hd / tf.cast(tf.sqrt(nv), hd.dtype)[:, :, None]
        a = tf.reduce_sum(tf.abs(g[:, :, 0]) ** 2, axis=1)                            # [B, Ld, S]
        d = tf.reduce_sum(tf.abs(g[:, :, 1]) ** 2, axis=1)
        b2 = tf.abs(tf.reduce_sum(tf.math.conj(g[:, :, 0]) * g[:, :, 1], axis=1)) ** 2
        sinr = tf.stack([a - b2 / (1.0 + d), d - b2 / (1.0 + a)], axis=1)              # [B, 2, Ld, S]
        return tf.reshape(sinr, [tf.shape(sinr)[0], -1])

    # -- host --------------------------------------------------------------------------------
    def evaluate(self, seeds, h, no, prev_llr, weights: Sequence[np.ndarray] | None = None,
                 h_int: np.ndarray | None = None) -> ChainOutput:
        """One batched call of the chain's programs (the tensors stay where they are between them);
        ``weights``: the neural receiver's (default: the current weights of the receiver this chain was
        built with, which may be another receiver of the same graph); ``h_int`` [B, A, J, S] the
        co-scheduled streams' channels (``num_interferers`` J > 0 only)."""
        tf = self._tf
        if (h_int is None) != (self.key.num_interferers == 0):
            raise ValueError(f"h_int is needed exactly when num_interferers > 0 ({self.key.num_interferers})")
        c, w, v, h_t, no_t = self._transmitted(seeds, h, no)
        prev_t = tf.constant(prev_llr, tf.float32)
        extra = [] if h_int is None else [v[0], tf.constant(h_int, tf.complex64)]
        if self.neural is None:
            llr, ber, eesm_db = self._link.link(c, w, h_t, no_t, self._beta_tensor, *extra)
            crc, comb = self._decode_fn(llr, prev_t)
            nan = np.full(len(seeds), np.nan, np.float32)
            out = ChainOutput(crc.numpy(), ber.numpy(), eesm_db.numpy(), comb.numpy(), nan, nan.copy())
        else:
            weights = self.neural.weights() if weights is None else weights
            y_rx, ber_ls, ber_genie, eesm_db = self._link.link(c, w, h_t, no_t, self._beta_tensor, *extra)
            llr_grid = self._neural_program(y_rx, self._pilots_tensor, no_t, [tf.constant(w) for w in weights])
            crc, ber, comb = self._back_fn(llr_grid, c, prev_t)
            out = ChainOutput(crc.numpy(), ber.numpy(), eesm_db.numpy(), comb.numpy(), ber_genie.numpy(),
                              ber_ls.numpy())
        self.compiled_batches.add(len(seeds))
        return out

    def _transmitted(self, seeds, h, no):
        """The host arrays as tensors and what the transmitter sends: (coded bits c [B, N], noise w,
        co-scheduled symbols [v] or [], h, no), the chain's programs traced first."""
        tf = self._tf
        if not self._traced:
            self._trace()
        bits, w, *v = self._draw_fn(tf.constant(seeds, tf.int64))
        return self._encode_fn(bits), w, v, tf.constant(h, tf.complex64), tf.constant(no, tf.float32)

    def _trace(self) -> None:
        """Trace the chain's programs under names that depend on what they compute alone."""
        graph = None if self.neural is None else self.neural.graph_key
        with stable_names(f"encode {self.key!r}"):
            self._draw_fn.get_concrete_function()
            self._encode_fn.get_concrete_function()
        if self.neural is None:
            with stable_names(f"decode {self.key!r}"):
                self._decode_fn.get_concrete_function()
        else:
            # one chain per (key, graph) in a process (get_chain): the same identity is not traced twice
            with stable_names(f"back {self.key!r} {graph!r}"):
                self._back_fn.get_concrete_function()
            self._neural_program.trace()
        self._link.link.trace()
        self._traced = True

    def __call__(self, seeds, h, no, prev_llr, h_int=None):
        return tuple(self.evaluate(seeds, h, no, prev_llr, h_int=h_int)[:4])

    def received(self, seeds, h, no) -> tuple[np.ndarray, np.ndarray]:
        """The received grid y [B, A, 14, S] complex64 and the coded bits [B, N] float32 (0/1) of the
        transmissions ``seeds`` (the arguments of ``evaluate``): the same stateless draws through the
        same programs, so they are the grids its receivers saw."""
        c, w, _, h_t, no_t = self._transmitted(seeds, h, no)
        if self.neural is not None and not self.key.num_interferers:
            # the neural chain's link computes it anyway (one program less per modulation order)
            y = self._link.link(c, w, h_t, no_t, self._beta_tensor)[0]
        else:
            y = self._link.received(c, w, h_t, no_t)
        return y.numpy(), c.numpy()

    def padded_inputs(self, n: int, min_batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Zeroed seeds [b, 6] int64, h [b, *h_shape] complex64 and no [b] float32 for n transmissions,
        padded to the batch b = max(min_batch, next power of two >= n): XLA compiles once per batch
        size, so bucketed sizes keep compilations few. Padding rows: unit channel (two layers: layer
        l on UE antenna l alone) and noise."""
        b = max(min_batch, 1 << (n - 1).bit_length())
        if self.key.num_layers == 1:
            h = np.ones((b, *self.h_shape), np.complex64)
        else:
            h = np.broadcast_to(np.eye(self.key.num_ue_ant, self.key.num_layers, dtype=np.complex64)[..., None],
                                (b, *self.h_shape)).copy()
        return np.zeros((b, 6), np.int64), h, np.ones(b, np.float32)


def get_chain(key: ChainKey, neural: NeuralReceiver | None = None) -> Chain:
    """Chains are cached per process so repeated simulations do not recompile; neural chains
    per ``neural.graph_key`` (receivers with the same graph share one; weights are per call).
    Thread-safe: the link-level backend's compile-ahead thread (simulator/phy/compile_ahead.py) builds
    chains too."""
    cache_key = _cache_key(key, neural)
    with _CHAINS_LOCK:
        if cache_key not in _CHAINS:
            _CHAINS[cache_key] = Chain(key, neural)
        return _CHAINS[cache_key]


def built_chain(key: ChainKey, neural: NeuralReceiver | None = None) -> Chain | None:
    """The chain ``get_chain`` would return if it has been built, else None (builds nothing)."""
    return _CHAINS.get(_cache_key(key, neural))


def _cache_key(key: ChainKey, neural: NeuralReceiver | None) -> tuple:
    return key, None if neural is None else neural.graph_key


_CHAINS: dict[tuple, Chain] = {}
_CHAINS_LOCK = threading.Lock()


class SharedProgram:
    """A ``tf.function`` that many chains call: traced once (thread-safe: the compile-ahead thread calls
    it too) under a name that depends on ``identity`` alone (``stable_names``: the XLA cache key),
    compiled once per batch size."""

    def __init__(self, fn, identity: str):
        self._fn = fn
        self.identity = identity
        self._lock = threading.Lock()
        self._traced = False

    def trace(self) -> None:
        with self._lock:
            if not self._traced:
                with stable_names(self.identity):
                    self._fn.get_concrete_function()
                self._traced = True

    def __call__(self, *args):
        self.trace()
        return self._fn(*args)


def _shared(key, build):
    """The process's shared object of ``key``, built by ``build()`` on first request."""
    with _SHARED_LOCK:       # not _CHAINS_LOCK: get_chain holds it while a chain asks for its programs
        if key not in _SHARED:
            _SHARED[key] = build()
        return _SHARED[key]


_SHARED: dict = {}
_SHARED_LOCK = threading.Lock()


class LinkProgram:
    """The programs between a chain's encoder and its decoder: mapping, the channel and noise, channel
    estimation, detection and demapping, the uncoded BERs and the EESM. They depend on the grid, the
    receiver, the layers, the co-scheduled streams and the modulation order, not on the MCS (the
    coded bits and the EESM's beta are arguments), so one is traced and compiled for every MCS of a
    modulation order (``link_program``). Built from the first chain that asks.

    ``link(c, w, h, no, beta[, v, h_int])`` (c the coded bits, w the noise and v the co-scheduled
    symbols of ``Chain._draw``) -> LMMSE receivers: (llr [B, N], ber [B], sinr_eff_db [B]); neural
    receiver: (y_rx [B, A, 14, S], ber_ls, ber_genie, sinr_eff_db). ``received(c, w, h, no)`` -> y
    [B, A, 14, S] (traced on its first call).
    """

    def __init__(self, chain: Chain, identity: str):
        import tensorflow as tf

        key = chain.key
        spec = [tf.TensorSpec([None, chain.num_coded_bits], tf.float32),
                tf.TensorSpec([None, key.num_ue_ant, NUM_OFDM_SYMBOLS, chain.num_subcarriers], tf.complex64),
                tf.TensorSpec([None, *chain.h_shape], tf.complex64), tf.TensorSpec([None], tf.float32)]
        beta = [tf.TensorSpec([], tf.float32)]
        h_int = [tf.TensorSpec([None, key.num_interferers, NUM_OFDM_SYMBOLS, chain.num_subcarriers], tf.complex64),
                 tf.TensorSpec([None, *chain.h_int_shape], tf.complex64)] if key.num_interferers else []
        link = chain._link_lmmse if chain.neural is None else chain._link_front
        self.link = SharedProgram(tf.function(link, jit_compile=True, autograph=False,
                                              input_signature=spec + beta + h_int), f"link {identity}")
        self.received = SharedProgram(tf.function(chain._link_received, jit_compile=True, autograph=False,
                                                  input_signature=spec), f"received {identity}")


def link_program(chain: Chain) -> LinkProgram:
    """The process's :class:`LinkProgram` of ``chain``'s grid, receiver, layers, co-scheduled streams and
    modulation order (built from ``chain`` on first request)."""
    identity = f"{replace(chain.key, mcs=-1, mcs_table=0)!r} {chain.num_bits_per_symbol}"
    return _shared(("link", identity), lambda: LinkProgram(chain, identity))


def neural_program(neural: NeuralReceiver, num_ant: int, num_subcarriers: int) -> SharedProgram:
    """The process's program of a neural receiver's ``llr_grid`` on this grid: y [B, A, 14, S] complex64,
    pilots [14, S] complex64, no [B] float32, params -> llr_grid [B, 14, S, W] float32, shared by the
    chains of every MCS (built on first request)."""
    def build() -> SharedProgram:
        import tensorflow as tf

        def run(y, pilots, no, params):
            batch = tf.shape(y)[0]
            return neural.llr_grid(y, tf.broadcast_to(pilots[None], [batch, *pilots.shape]), no, params)

        fn = tf.function(run, jit_compile=True, autograph=False, input_signature=[
            tf.TensorSpec([None, num_ant, NUM_OFDM_SYMBOLS, num_subcarriers], tf.complex64),
            tf.TensorSpec([NUM_OFDM_SYMBOLS, num_subcarriers], tf.complex64),
            tf.TensorSpec([None], tf.float32),
            [tf.TensorSpec(w.shape, tf.as_dtype(w.dtype)) for w in neural.weights()]])
        return SharedProgram(fn, f"neural {neural.graph_key!r} {num_ant} {num_subcarriers}")

    return _shared(("neural", neural.graph_key, num_ant, num_subcarriers), build)
