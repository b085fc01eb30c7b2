"""Link-level PHY backend: every transmission through the NR chain (``simulator/phy/nr_chain.py``), batched.

Batching: ``submit`` only queues; the first ``resolve`` evaluates everything pending, one XLA
call per MCS, layer count and allocation (``tx.layers`` 1: ``tx.h`` [A, S]; 2: ``tx.h`` [A, 2, S],
through the chain with ``ChainKey.num_layers`` 2), padded to ``phy.link_level_batch`` (default
num_ues * k1, the most that can be pending, so each chain compiles once; XLA compiles per
batch shape). That is exact:
HARQ feedback arrives ``k1`` slots after the transmission and nothing decided in between
depends on the outcome, and a retransmission is only submitted after the feedback of the
previous round, i.e. after its soft buffer exists. Every random number is drawn per
transmission from its own seed, so the results do not depend on how transmissions are
grouped into calls.

With a scheduler, a block on n PRBs goes through the chain of n PRBs (``ChainKey.num_prbs``, its
TBS that of the allocation) on its allocated subcarriers ``tx.sc`` put side by side, in group order:
a chain per MCS and allocation size, each compiled on first use (~5-25 s). Non-adjacent groups
become adjacent in the chain's grid, so the LS estimator interpolates across their edge (one
subcarrier per edge of the DMRS comb) where a real receiver would estimate each group on its own.
MU-MIMO blocks bring the other streams of their groups (``tx.h_int``, ``max_ues_per_prb - 1`` of
them, zeros where a group has fewer): the chain adds them as Gaussian symbols on the data REs and
the UE's LMMSE treats them as known-covariance interference (``ChainKey.num_interferers``,
``simulator/phy/nr_chain.py``).

Compilation ahead of need (``phy.compile_ahead``, default 4; ``simulator/phy/compile_ahead.py``): after
each call, a background thread compiles the programs of the MCS next to it (same layers, allocation
and batch), nearest first, so that link adaptation's next MCS is usually ready when the run reaches
it. ``programs`` records per program the seconds its first call took (waiting for the thread
included), its calls, their total seconds and the wait (``tests/benchmarks/bench_compile_ahead.py``).

Neural receiver (``phy.receiver: neural``): the class of ``models.receiver.type`` from
``models.registry``, loaded from ``models.receiver.checkpoint``; the chain reaches it only
through the ``models.base.NeuralReceiver`` protocol.

Receiver adaptation (``models.receiver.adaptation``, ``simulator/processes/receiver_adaptation.py``):

* per-UE weights: ``schedule_neural_weights(ue, weights, from_us)`` makes UE ``ue`` receive the
  transmissions with ``t_us >= from_us`` with ``weights``; the choice is made per transmission
  when it is evaluated (transmissions of one MCS with different weights go in separate calls of
  the same compiled chain), so an update arriving between a transmission and its feedback does
  not reach back to it;
* slot records: ``record_slots(n)`` keeps the latest n evaluated transmissions of each UE in
  ``history`` (``simulator/phy/slot_records.py``), which regenerates their received grids and
  evaluates them again with other weights.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from models.base import NeuralReceiver
from models.registry import get_model
from simulator.link_adaptation.tables import num_mcs
from simulator.phy.base import Transmission
from simulator.phy.compile_ahead import CompileAhead
from simulator.phy.compile_ahead import enabled as compile_ahead_enabled
from simulator.phy.nr_chain import Chain, ChainKey, built_chain, get_chain
from simulator.phy.slot_records import SlotHistory, SlotRecord


class LinkLevelBackend:
    name = "link_level"

    def __init__(self, scenario, tf_seeds: dict[int, int], neural: NeuralReceiver | None = None):
        """``neural``: the receiver for ``phy.receiver: neural`` (default: ``models.receiver`` loaded
        through the model registry); the backend keeps its own copy of the weights (``neural_weights``)."""
        phy, carrier = scenario.phy, scenario.carrier
        self.tf_seeds = {int(u): int(s) for u, s in tf_seeds.items()}
        self.receiver = phy.receiver
        self.neural = None
        self.neural_weights: list[np.ndarray] | None = None
        if phy.receiver == "neural":
            if neural is None:
                cfg = scenario.models.receiver
                if cfg is None:
                    raise ValueError("phy.receiver: neural needs models.receiver")
                neural = get_model(cfg.type).load(cfg.checkpoint)
            self.neural = neural
            self.neural_weights = [np.array(w) for w in neural.weights()]
        elif neural is not None:
            raise ValueError(f"a neural receiver was given but phy.receiver is {phy.receiver!r}")
        # one batch size, so each program compiles once: at most num_ues * k1 transmissions are ever pending
        self.min_batch = int(phy.link_level_batch or len(scenario.ues) * scenario.harq.k1_slots)
        self._key = dict(num_prbs=carrier.num_prbs, subcarrier_spacing_khz=carrier.subcarrier_spacing_khz,
                         mcs_table=phy.mcs_table, num_dmrs_symbols=phy.num_dmrs_symbols,
                         num_ue_ant=phy.num_ue_antennas, receiver=phy.receiver)
        self._pending: list[Transmission] = []
        self._soft: dict[tuple[int, int], np.ndarray] = {}    # (ue, harq) -> combined LLRs [N]
        self._first_slot: dict[tuple[int, int], int] = {}     # (ue, harq) -> slot of the first transmission
        self._ue_weights: dict[int, list[tuple[int, list[np.ndarray]]]] = {}   # ue -> [(from_us, weights)]
        self.history: SlotHistory | None = None               # record_slots
        # called with a description before a program's first call (its XLA compilation): the run's status
        self.on_new_program: Callable[[str], None] | None = None
        # (mcs, layers, num_prbs, num_interferers, batch) -> [first call s (waiting included), calls,
        # seconds in calls, seconds waited for the compile-ahead thread]
        self.programs: dict[tuple, list] = {}
        self._num_mcs = num_mcs(phy.mcs_table)
        self._reach = int(phy.compile_ahead) if compile_ahead_enabled() else 0
        self.ahead = CompileAhead(self._warm, self._is_compiled) if self._reach else None

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
        """Keep the latest ``maxlen`` evaluated transmissions of every UE in ``history`` (a
        ``SlotHistory``). Off by default: only the receiver adaptation needs them."""
        self.history = SlotHistory(maxlen, self.chain, self.min_batch)

    # -- the PhyBackend interface -----------------------------------------------------------------
    def chain(self, mcs: int, layers: int = 1, num_prbs: int | None = None, num_interferers: int = 0) -> Chain:
        """The chain of an MCS, layer count, allocation (None: the carrier) and co-scheduled stream count."""
        return get_chain(self._chain_key(mcs, layers, num_prbs, num_interferers), self.neural)

    def _chain_key(self, mcs: int, layers: int, num_prbs: int | None, num_interferers: int) -> ChainKey:
        key = {**self._key, "num_prbs": int(num_prbs or self._key["num_prbs"])}
        return ChainKey(mcs=int(mcs), num_layers=int(layers), num_interferers=int(num_interferers), **key)

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

    def close(self) -> None:
        """The run is over: stop compiling ahead."""
        if self.ahead is not None:
            self.ahead.close()

    # -- programs compiled ahead of need ----------------------------------------------------------
    def _is_compiled(self, program: tuple) -> bool:
        mcs, layers, num_prbs, num_int, batch = program
        chain = built_chain(self._chain_key(mcs, layers, num_prbs, num_int), self.neural)
        return chain is not None and batch in chain.compiled_batches

    def _warm(self, program: tuple) -> None:
        """Compile ``program`` by calling it once on padding inputs (outputs dropped; the chain's draws
        come from the seeds it is given, so nothing the run computes changes)."""
        mcs, layers, num_prbs, num_int, batch = program
        chain = self.chain(mcs, layers, num_prbs, num_int)
        seeds, h, no = chain.padded_inputs(1, batch)
        h_int = np.zeros((batch, *chain.h_int_shape), np.complex64) if num_int else None
        chain.evaluate(seeds, h, no, np.zeros((batch, chain.num_coded_bits), np.float32), self.neural_weights,
                       h_int=h_int)

    def _neighbours(self, program: tuple) -> list[tuple]:
        """The programs of the ``compile_ahead`` MCS on either side of ``program``'s, nearest first."""
        mcs, *rest = program
        near = [m for d in range(1, self._reach + 1) for m in (mcs + d, mcs - d) if 0 <= m < self._num_mcs]
        return [(m, *rest) for m in near]

    def flush(self) -> None:
        """Evaluate every pending transmission: one batched call per MCS, layer count and allocation size
        (and per set of neural weights, when UEs receive with different ones)."""
        pending, self._pending = self._pending, []
        groups: dict[tuple, tuple[list | None, list[Transmission]]] = {}
        for tx in pending:
            w = self.neural_weights_at(tx.ue, tx.t_us) if self._ue_weights else self.neural_weights
            num_prbs = self._key["num_prbs"] if tx.sc is None else len(tx.sc) // 12
            num_int = 0 if tx.h_int is None else tx.h_int.shape[1]
            groups.setdefault((tx.mcs, tx.layers, num_prbs, num_int, id(w)), (w, []))[1].append(tx)
        for (mcs, layers, num_prbs, num_int, _), (w, txs) in groups.items():
            self._evaluate(self.chain(mcs, layers, num_prbs, num_int), txs, w)

    def _evaluate(self, chain: Chain, txs: list[Transmission], weights: list | None = None) -> None:
        n = len(txs)
        seeds, h, no = chain.padded_inputs(n, self.min_batch)
        k = chain.key
        program = (k.mcs, k.num_layers, k.num_prbs, k.num_interferers, len(seeds))
        waited = self.ahead.claim(program) if self.ahead is not None else 0.0
        if self.on_new_program is not None and len(seeds) not in chain.compiled_batches:
            self.on_new_program(f"compiling the NR chain for MCS {k.mcs}, {k.num_layers} layer(s), {k.num_prbs} PRB"
                                + (f", {k.num_interferers} co-scheduled stream(s)" if k.num_interferers else "")
                                + f", batch {len(seeds)} (once per program)")
        h_int = np.zeros((len(seeds), *chain.h_int_shape), np.complex64) if chain.key.num_interferers else None
        prev = np.zeros((len(seeds), chain.num_coded_bits), np.float32)
        for i, tx in enumerate(txs):
            key = (tx.ue, tx.harq_process)
            if tx.tx_round > 1 and key in self._soft:
                prev[i] = self._soft[key]
            seeds[i] = (self.tf_seeds[tx.ue], tx.ue, tx.slot, tx.tx_round, self._first_slot[key], tx.harq_process)
            # the allocated subcarriers (MU-MIMO blocks bring only those)
            h[i] = tx.h if tx.sc is None or tx.h.shape[-1] == len(tx.sc) else tx.h[..., tx.sc]
            if h_int is not None:
                h_int[i] = tx.h_int
            no[i] = 10.0 ** (-tx.snr_db / 10.0)
        t0 = time.perf_counter()
        out = chain.evaluate(seeds, h, no, prev, self.neural_weights if weights is None else weights, h_int=h_int)
        took = time.perf_counter() - t0
        stats = self.programs.setdefault(program, [waited + took, 0, 0.0, waited])
        stats[1] += 1
        stats[2] += took
        if self.ahead is not None:
            self.ahead.want(self._neighbours(program))
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
                self.history.append(SlotRecord(tx.ue, tx.slot, tx.t_us, tx.tx_round, tx.mcs, seeds[i].copy(),
                                               h[i].copy(), float(no[i]), tx.ber, tx.ber_genie))
