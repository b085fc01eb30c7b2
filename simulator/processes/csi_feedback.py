"""csi_feedback: one UE's neural CSI reports and the codec's online fine-tuning (seeds/002).

At every CSI-RS occasion (``csi_rs_process`` calls ``on_occasion``) the UE takes the CSI sample
of the track at its distance travelled, keeps it among its ``samples`` most recent ones, and
compresses it with the encoder in use; the bytes ride in the CQI report's message on the
feedback link and the gNB decodes them when the message arrives (``gnb_inbox_process``), with
the decoder side of the version they were encoded for (``periods.csi_nmse_db``; a period whose
report is still queued or on the link when it ends is logged when the report has been decoded).
Every ``interval_m`` metres the UE fine-tunes on its recent samples: a job on the adaptation path
(``simulator/processes/adaptation.py``) that waits the modelled compute time, then sends the
decoder update (if the scheme has one) as its own message on the same link; the update takes
effect when it arrives at the gNB (``encoder_only``, ``genie``, ``translation``: when the compute
time has passed). One fine-tuning at a time: a trigger while one is in flight (computing or on
the link) waits for the next occasion.
"""
from __future__ import annotations

import dataclasses
import math
from collections import deque

import numpy as np

from models.base import CsiDecoderSide, CsiEncoderSide
from simulator.link import Message
from simulator.processes.context import RunContext


class CsiFeedback:
    """UE ``ue``'s neural CSI feedback: the encoder side it holds, the gNB's decoder side, and the
    CSI track it measures: ``track_x`` [n, ant, sc, 2] sampled every ``spacing_m`` metres."""

    def __init__(self, run: RunContext, ue: int, encoder: CsiEncoderSide, decoder: CsiDecoderSide, uplink,
                 track_x: np.ndarray, spacing_m: float, *, interval_m: float, samples: int):
        self.run, self.ue, self.encoder, self.decoder, self.uplink = run, int(ue), encoder, decoder, uplink
        self.track_x, self.spacing_m = track_x, float(spacing_m)
        self.interval_m = float(interval_m)
        self.recent: deque = deque(maxlen=int(samples))
        self.last_tune_m = 0.0
        self.job = None                              # the fine-tuning in flight (not applied yet)
        self._waiting: dict[int, dict] = {}       # id(message) -> its period row, report not decoded yet

    def sample(self, distance_m: float) -> np.ndarray:
        """The track's CSI nearest to ``distance_m``, [ant, sc, 2]."""
        i = int(round(distance_m / self.spacing_m))
        if not 0 <= i < len(self.track_x):
            raise IndexError(f"UE {self.ue} at {distance_m:.2f} m is off the CSI track "
                             f"({(len(self.track_x) - 1) * self.spacing_m:.2f} m)")
        return self.track_x[i]

    def on_occasion(self, distance_m: float):
        """Compress the CSI at ``distance_m``; maybe start a fine-tuning. Returns the report."""
        x = self.sample(distance_m)
        self.recent.append(x)
        report = self.encoder.report(x)
        busy = self.job is not None and not self.job.applied.triggered
        if self.encoder.scheme != "none" and not busy and distance_m - self.last_tune_m >= self.interval_m:
            travelled = distance_m - self.last_tune_m
            self.last_tune_m = distance_m
            upd = self.encoder.fine_tune(np.stack(self.recent))
            upd = dataclasses.replace(upd, trigger="distance", trigger_value=travelled)
            self.job = self.run.adaptation.start(self.ue, upd, link=self.uplink if upd.update_bits else None)
        return report

    def decode(self, report) -> float:
        """gNB: the NMSE (dB) of the report's reconstruction."""
        return self.decoder.decode(report)

    def wait_for_decode(self, row: dict, msg: Message) -> None:
        """Write the period ``row`` once the gNB has decoded the report that ``msg`` carries."""
        self._waiting[id(msg)] = row
        self.run.env.process(self._write_when_decoded(row, msg))

    def _write_when_decoded(self, row: dict, msg: Message):
        nmse_db = yield msg.payload.decoded
        row.update(csi_nmse_db=nmse_db, report_arrival_t_us=msg.arrival_us)
        del self._waiting[id(msg)]
        self.run.rec.append("periods", row)

    def finish(self) -> None:
        """At the end of the run: write the rows of reports still on the link (NaN NMSE)."""
        for row in self._waiting.values():
            row.update(csi_nmse_db=math.nan)
            self.run.rec.append("periods", row)
        self._waiting.clear()
