"""PHY abstraction backend: EESM effective SINR + Sionna SYS BLER tables, HARQ by SINR accumulation.

Chase combining adds the per-RE post-equalisation SINRs of all transmissions of a
transport block (maximum-ratio combining of identical copies), then maps the sum through
EESM with the MCS's beta and reads the transport BLER from the table. The outcome of each
transmission is an independent draw with that BLER. The receiver is modelled with
perfect CSI; channel-estimation loss is only in the link_level backend.
"""
from __future__ import annotations

import numpy as np

from simulator.link_adaptation.tables import BlerTable
from simulator.phy.base import Transmission
from simulator.phy.precoding import stream_sinr


class AbstractionBackend:
    name = "abstraction"

    def __init__(self, table: BlerTable, rngs: dict[int, np.random.Generator], table2: BlerTable | None = None):
        self.table = table
        self.tables = {1: table} if table2 is None else {1: table, 2: table2}
        self.rngs = rngs                           # per-UE generator for the ACK draws
        self._soft: dict[tuple[int, int], np.ndarray] = {}

    def submit(self, tx: Transmission) -> None:
        if tx.sinr_re is not None:                                # MU-MIMO: computed with the interference
            sinr = tx.sinr_re
        else:
            sinr = stream_sinr(tx.h, tx.gain, tx.snr_db, tx.layers)   # two layers: the codeword's REs on both
            if tx.sc is not None:                                     # the allocated subcarriers only
                sinr = sinr.reshape(tx.layers, -1)[:, tx.sc].reshape(-1)
        key = (tx.ue, tx.harq_process)
        if tx.tx_round > 1 and key in self._soft:
            prev = self._soft[key]
            # a retransmission on groups of another size (the carrier's shorter last group) combines
            # with the mean SINR of the earlier copies: REs do not pair up one to one
            sinr = sinr + (prev if prev.shape == sinr.shape else prev.mean())
        self._soft[key] = sinr
        table = self.tables[tx.layers] if tx.table is None else tx.table
        eff_db = table.eesm_db(sinr, tx.mcs)
        tbler = table.tbler_scalar(tx.mcs, eff_db)
        tx.sinr_eff_db = eff_db
        tx.ack = bool(self.rngs[tx.ue].random() >= tbler)

    def resolve(self, tx: Transmission) -> None:
        return None

    def release(self, ue: int, harq_process: int) -> None:
        self._soft.pop((ue, harq_process), None)

    def close(self) -> None:
        """Nothing runs in the background."""
