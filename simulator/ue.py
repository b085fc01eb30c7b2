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
        """The slot's channel precoded with ``precoder`` (None: gNB antenna 0 alone): one layer,
        h [num_ue_ant, sc] complex64 and its gain [sc] float64 (sum over UE antennas of |h|^2); two
        layers, h [num_ue_ant, 2, sc] (one stream per layer) and the mean of their gains [sc]."""
        if precoder is None:
            return self.channel.port0_slot(slot)
        if precoder.layers == 1:
            h = self.channel.precoded_slot(slot, precoder.w, precoder.subband_sc)
            return h, stream_gain(h)
        h = np.stack([self.channel.precoded_slot(slot, precoder.w[..., k], precoder.subband_sc)
                      for k in range(precoder.layers)], axis=1)
        return h, stream_gain(np.moveaxis(h, 1, 0)).mean(axis=0)


@dataclass
class UeLink:
    """The gNB's per-UE link state."""
    ue: int
    olla: Olla
    cqi_mapper: CqiMapper
    num_harq: int
    max_transmissions: int
    cqi_mapper2: CqiMapper | None = None          # CQI of two-layer reports (csi_rs.report.max_rank 2)
    olla_mu: Olla | None = None                   # scheduler.mu_mcs set_estimate: the offset of its MU-MIMO blocks
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

    @property
    def layers(self) -> int:
        """Layers of the precoder the gNB holds (1 before the first report)."""
        return 1 if self.precoder is None else self.precoder.layers

    def mapper(self, layers: int) -> CqiMapper:
        return self.cqi_mapper if layers == 1 else self.cqi_mapper2

    def receive_cqi(self, cqi: int, precoder: Precoder | None = None) -> None:
        """A CQI report (and the precoder it implies, whose layers are the report's rank) has reached the gNB."""
        self.cqi = int(cqi)
        self.precoder = precoder
        self.sinr_est_db = float(self.mapper(self.layers).sinr_db_of_cqi[self.cqi])

    def new_tb_mcs(self) -> int:
        """The MCS of a new transport block on ``layers`` layers."""
        if self.sinr_est_db is None:              # no report yet: most robust MCS
            return self.olla.table.lowest_mcs
        return self.olla.select_mcs(self.sinr_est_db, self.layers)

    def olla_of(self, co_scheduled: bool) -> Olla:
        """The OLLA loop a block's MCS came from and its first transmission's ACK/NACK goes to: the MU
        loop for a co-scheduled block when there is one, else the single-user loop."""
        return self.olla_mu if co_scheduled and self.olla_mu is not None else self.olla

    def close_period(self) -> tuple[int, int]:
        n = (self.n_ack, self.n_nack)
        self.n_ack = self.n_nack = 0
        return n
