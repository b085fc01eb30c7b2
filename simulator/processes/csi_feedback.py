"""csi_feedback: one UE's neural CSI reports and the codec's online fine-tuning (seeds/002).

At every CSI-RS occasion the UE takes its CSI, keeps it among its ``samples`` most recent
matrices, and compresses it with the encoder in use. Two sources:

- ``csi_rs.report.kind: neural`` (a gNB array): the channel the UE measured at the CSI-RS, on
  the codec's grid (``simulator/csi/codec_grid.py``), one matrix per UE antenna. ``measure`` is
  then the UE's CSI reporter: the CQI is computed for the precoder of the reconstruction it
  expects, and the gNB precodes with the dominant eigenvectors of the reconstruction it decodes.
- a CSI track (one gNB antenna, the study mode of seeds/002): the track's sample at the UE's
  distance travelled (``on_occasion``); its reconstruction is scored (NMSE) and drives nothing.

The bytes ride in the CQI report's message on the feedback link and the gNB decodes them when
the message arrives (``gnb_inbox_process``), with the decoder side of the version they were
encoded for (``periods.csi_nmse_db``; a period whose report is still queued or on the link when
it ends is logged when the report has been decoded). Every ``interval_m`` metres the UE
fine-tunes on its recent samples: a job on the adaptation path
(``simulator/processes/adaptation.py``) that waits the modelled compute time, then sends the
decoder update (if the scheme has one) as its own message on the same link, ahead of the
reports queued after it; the update takes effect when it arrives at the gNB (``encoder_only``,
``genie``, ``translation``: when the compute time has passed). One fine-tuning at a time: a
trigger while one is in flight (computing or on the link) waits for the next occasion.
"""
from __future__ import annotations

import dataclasses
import math
from collections import deque

import numpy as np

from models.base import CsiDecoderSide, CsiEncoderSide
from simulator.csi.codec_grid import CodecGrid
from simulator.csi.report import CsiMeasurement, Precoder, choose_rank
from simulator.link import Message
from simulator.processes.context import RunContext


class CsiFeedback:
    """UE ``ue``'s neural CSI feedback: the encoder side it holds, the gNB's decoder side, and where
    its CSI comes from: the codec ``grid`` on the measured channel, or ``track_x`` [n, ant, sc, 2]
    sampled every ``spacing_m`` metres."""

    def __init__(self, run: RunContext, ue: int, encoder: CsiEncoderSide, decoder: CsiDecoderSide, uplink, *,
                 interval_m: float, samples: int, grid: CodecGrid | None = None, subband_sc: int = 0,
                 max_rank: int = 1, track_x: np.ndarray | None = None, spacing_m: float = 0.0):
        if (grid is None) == (track_x is None):
            raise ValueError("give the codec grid (neural reports) or a track, not both")
        self.run, self.ue, self.encoder, self.decoder, self.uplink = run, int(ue), encoder, decoder, uplink
        self.grid, self.subband_sc, self.max_rank = grid, int(subband_sc), int(max_rank)
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

    def measure(self, channel, slot: int, snr_db: float, distance_m: float) -> CsiMeasurement:
        """Neural reports: compress the channel measured at CSI-RS ``slot``; the precoder is the one
        the gNB will derive from the report. With max_rank 2 the UE picks the rank whose eigen-precoder
        of the expected reconstruction carries the most mutual information on the measured channel at
        ``snr_db``, and reports it (1 RI bit)."""
        h = channel.cfr_slot(slot)                                                 # [ue, gnb, sc]
        report = self._report(self.grid.to_codec(h), distance_m)
        if self.max_rank == 1:
            return CsiMeasurement(Precoder(self.grid.precoder(report.x_expected), self.subband_sc), 0, csi=report, h=h)
        w = choose_rank(h, self.grid.precoder(report.x_expected, 2), np.arange(h.shape[-1]) // self.subband_sc, snr_db)
        return CsiMeasurement(Precoder(w, self.subband_sc), 1, csi=report, h=h)

    def on_occasion(self, distance_m: float):
        """Track mode: compress the track's CSI at ``distance_m``. Returns the report."""
        return self._report(self.sample(distance_m)[None], distance_m)

    def _report(self, x: np.ndarray, distance_m: float):
        """x [n, ant, sc, 2] -> the codec's report; maybe start a fine-tuning."""
        self.recent.extend(x)
        report = self.encoder.report(x)
        busy = self.job is not None and not self.job.applied.triggered
        if self.encoder.scheme != "none" and not busy and distance_m - self.last_tune_m >= self.interval_m:
            travelled = distance_m - self.last_tune_m
            self.last_tune_m = distance_m
            upd = self.encoder.fine_tune(np.stack(self.recent))
            upd = dataclasses.replace(upd, trigger="distance", trigger_value=travelled)
            self.job = self.run.adaptation.start(self.ue, upd, link=self.uplink if upd.update_bits else None)
        return report

    def decode(self, report, rank: int = 1) -> tuple[float, Precoder | None]:
        """gNB: the NMSE (dB) of the report's reconstruction and, for neural reports, the precoder of
        the reported ``rank`` derived from it."""
        x_hat = self.decoder.decode(report)
        nmse_db = float(10 * np.log10(np.sum((report.x - x_hat) ** 2) / np.sum(report.x ** 2)))
        if self.grid is None:
            return nmse_db, None
        w = self.grid.precoder(x_hat, rank)
        return nmse_db, Precoder(w, self.subband_sc)

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
