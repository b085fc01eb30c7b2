"""The interface every PHY backend implements, and the transmission record they fill in.

The pdsch process ``submit``s one :class:`Transmission` per UE and slot and ``resolve``s it
when its HARQ feedback is due (``k1`` slots later). A backend may evaluate lazily: the
link_level backend batches every submitted transmission into one XLA call per MCS when
the first of them is resolved, which is exact because no decision between submission and
feedback depends on the outcome.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(slots=True)
class Transmission:
    """One PDSCH transport-block transmission (a row of ``slots.parquet`` once resolved).

    ``h`` is the channel frequency response [num_ue_ant, num_subcarriers] complex64 of the
    slot as the stream sees it, i.e. precoded with the precoder the gNB holds (unit average power
    per antenna pair; the DMRS is precoded like the data), on the whole carrier (a scheduled block's
    subcarriers are ``sc``); MU-MIMO blocks carry it on their ``sc`` only, with the co-scheduled
    streams' channels in ``h_int``, and only for link_level (the abstraction reads ``sinr_re``).
    ``snr_db`` the average per-RE SNR; ``noise`` is set by the backend. ``ack``/``sinr_eff_db``/``ber`` (and ``ber_genie``/``ber_ls``) are filled in by the backend.
    """
    ue: int
    slot: int
    t_us: int
    harq_process: int
    tx_round: int
    mcs: int
    tbs_bits: int
    snr_db: float
    h: np.ndarray | None = field(repr=False)          # None with MU-MIMO on the abstraction (``sinr_re``)
    ack: bool | None = None
    sinr_eff_db: float = math.nan
    ber: float = math.nan
    ber_genie: float = math.nan     # link_level with the neural receiver: genie LMMSE / LS+LMMSE on the same grid
    ber_ls: float = math.nan
    gain: np.ndarray | None = field(default=None, repr=False)   # [num_subcarriers] sum_rx |h|^2
    olla_offset_db: float = 0.0
    cqi_used: int = 0
    precoding_gain_db: float = 0.0  # mean power of the precoded stream over one gNB antenna's (0 with one)
    layers: int = 1                 # 2: ``h`` is [num_ue_ant, 2, num_subcarriers], one stream per layer
    sc: np.ndarray | None = field(default=None, repr=False)   # the allocated subcarriers (None: the whole carrier)
    table: object | None = field(default=None, repr=False)    # the BLER table of the allocation (None: the carrier's)
    groups: tuple = ()              # the PRB groups allocated (scheduler on; () = the whole carrier)
    sinr_re: np.ndarray | None = field(default=None, repr=False)  # MU-MIMO: the per-RE SINR of the allocated REs,
                                                                   # co-scheduled interference included
    co_scheduled: tuple = ()        # MU-MIMO: the UEs sharing any of its PRB groups
    h_int: np.ndarray | None = field(default=None, repr=False)  # MU-MIMO, link_level: [num_ue_ant, J, len(sc)] the
                                                                 # other streams of its groups (zeros where none)
    precoder: object | None = field(default=None, repr=False)   # what the gNB precoded with (a retransmission
                                                                # of a two-layer block may need it again)


class PhyBackend(Protocol):
    name: str

    def submit(self, tx: Transmission) -> None:
        """Queue (or evaluate) a transmission. Its soft buffer is keyed by (ue, harq_process);
        ``tx_round == 1`` starts a new transport block."""

    def resolve(self, tx: Transmission) -> None:
        """Make sure ``tx.ack`` is set (evaluates whatever is pending)."""

    def release(self, ue: int, harq_process: int) -> None:
        """Forget the soft buffer of a finished transport block."""

    def close(self) -> None:
        """The run is over (or failed): stop any background work."""


def per_re_sinr(gain: np.ndarray, snr_db: float) -> np.ndarray:
    """Post-MRC/LMMSE SINR per subcarrier of one stream with perfect CSI: snr * sum_rx |h|^2.

    gain: [num_subcarriers] sum over receive antennas of |h|^2 -> [num_subcarriers] float64 (linear).
    """
    return gain * (10.0 ** (snr_db / 10.0))
