"""Slot records: the transmissions the link_level backend evaluated, kept for receiver adaptation.

With ``LinkLevelBackend.record_slots(n)`` (off by default, so the hot path keeps nothing) the
latest n evaluated transmissions of each UE are kept as :class:`SlotRecord` (seed row, channel,
noise variance, BERs) in a :class:`SlotHistory` (``backend.history``). ``slot_arrays``
regenerates their received grids and coded bits with ``Chain.received`` (the same stateless
draws, compiled the same way) in the layout of a deeprx dataset, and ``evaluate_records``
evaluates them again with other weights (``simulator/processes/receiver_adaptation.py``).
"""
from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from simulator.link_adaptation.tables import NUM_OFDM_SYMBOLS
from simulator.phy.nr_chain import Chain, ChainOutput


@dataclass(frozen=True)
class SlotRecord:
    """A resolved transmission as the backend evaluated it: enough to regenerate its received grid
    (``SlotHistory.slot_arrays``) or to evaluate it again with other weights
    (``SlotHistory.evaluate_records``)."""
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


class SlotHistory:
    """The latest ``maxlen`` evaluated transmissions of every UE (``history[ue]``: SlotRecords, oldest
    first), and their received grids regenerated or evaluated again through the backend's chains.

    chain: MCS -> the backend's ``Chain`` of that MCS; min_batch: the backend's smallest batch (records
    are padded as its own calls are, so they reuse its compiled batch sizes).
    """

    def __init__(self, maxlen: int, chain: Callable[[int], Chain], min_batch: int):
        self._by_ue: dict[int, deque] = defaultdict(lambda: deque(maxlen=int(maxlen)))
        self._chain = chain
        self._min_batch = int(min_batch)

    def __getitem__(self, ue: int) -> deque:
        return self._by_ue[ue]

    def append(self, record: SlotRecord) -> None:
        self._by_ue[record.ue].append(record)

    def slot_arrays(self, records: Sequence[SlotRecord], bits_width: int) -> dict[str, np.ndarray]:
        """The received grids of ``records`` in the layout of a deeprx dataset (``models.deeprx.data``):
        index (the slot), y [n, A, 14, S], h, no, snr_db, mcs, bits_per_symbol, bits [n, 14, S, bits_width]
        (the coded bits of each data RE), pilots [14, S], data_re [14, S]. Regenerated from the
        transmissions' seeds by ``Chain.received``, i.e. the grids the UE's receiver saw."""
        n = len(records)
        out = None
        for mcs, rows in _by_mcs(records).items():
            chain = self._chain(mcs)
            s = chain.num_subcarriers
            if out is None:
                out = {"index": np.array([r.slot for r in records], np.int64),
                       "y": np.zeros((n, chain.key.num_ue_ant, NUM_OFDM_SYMBOLS, s), np.complex64),
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
            chain = self._chain(mcs)
            seeds, h, no = self._padded([records[i] for i in rows], chain)
            res = chain.evaluate(seeds, h, no, np.zeros((len(seeds), chain.num_coded_bits), np.float32), weights)
            for f in out:
                out[f][rows] = getattr(res, f)[:len(rows)]
        return ChainOutput(llr=None, **out)

    def _padded(self, records: Sequence[SlotRecord], chain: Chain):
        seeds, h, no = chain.padded_inputs(len(records), self._min_batch)
        for i, r in enumerate(records):
            seeds[i], h[i], no[i] = r.seeds, r.h, r.no
        return seeds, h, no


def _by_mcs(records: Sequence[SlotRecord]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(int(r.mcs), []).append(i)
    return groups
