"""Per-UE state: the UE side (mobility, channel, measurements) and the gNB's view of it
(last CQI, OLLA, HARQ processes, the period's ACK/NACK counts)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from simulator.channel.fading import FadingChannel, stream_gain
from simulator.link_adaptation.cqi import CqiMapper
from simulator.link_adaptation.olla import Olla
from simulator.mobility import Mobility
from simulator.csi.report import Precoder


@dataclass
class Ue:
    """UE side. ``snr_db`` [num_slots] is the average per-RE SNR of every slot."""
    id: int
    mobility: Mobility
    channel: FadingChannel
    snr_db: np.ndarray

    def channel_through(self, slot: int, precoder: Precoder | None) -> tuple[np.ndarray, np.ndarray]:
        """The slot's channel of one stream precoded with ``precoder`` (None: gNB antenna 0 alone):
        h [num_ue_ant, sc] complex64 and its gain [sc] float64 (sum over UE antennas of |h|^2)."""
        if precoder is None:
            return self.channel.port0_slot(slot)
        h = self.channel.precoded_slot(slot, precoder.w, precoder.subband_sc)
        return h, stream_gain(h)


@dataclass
class UeLink:
    """The gNB's per-UE link state."""
    ue: int
    olla: Olla
    cqi_mapper: CqiMapper
    num_harq: int
    max_transmissions: int
    cqi: int = 0                                  # last CQI received (0: none yet)
    precoder: Precoder | None = None              # from the last report (None: gNB antenna 0 alone)
    sinr_est_db: float | None = None              # SINR the gNB infers from that CQI
    free_harq: deque = field(default_factory=deque)
    retx: deque = field(default_factory=deque)    # NACKed transmissions waiting for a slot
    n_ack: int = 0                                # feedback received in the current period
    n_nack: int = 0
    # UE side: effective SINR (dB) of its latest PDSCH receptions, newest last. Appended when the
    # reception is resolved (k1 slots after it), which is when the backend has computed it.
    pdsch_sinr_db: deque = field(default_factory=lambda: deque(maxlen=4))

    def __post_init__(self):
        self.free_harq.extend(range(self.num_harq))

    def receive_cqi(self, cqi: int, precoder: Precoder | None = None) -> None:
        """A CQI report (and the precoder it implies) has reached the gNB."""
        self.cqi = int(cqi)
        self.precoder = precoder
        self.sinr_est_db = float(self.cqi_mapper.sinr_db_of_cqi[self.cqi])

    def new_tb_mcs(self) -> int:
        if self.sinr_est_db is None:              # no report yet: most robust MCS
            return self.olla.table.lowest_mcs
        return self.olla.select_mcs(self.sinr_est_db)

    def close_period(self) -> tuple[int, int]:
        n = (self.n_ack, self.n_nack)
        self.n_ack = self.n_nack = 0
        return n
