"""csi_feedback: one UE's neural CSI reports and the codec's online fine-tuning (seeds/002).

At every CSI-RS occasion (``csi_rs_process`` calls ``on_occasion``) the UE takes the CSI sample
of the track at its distance travelled, keeps it among its ``samples`` most recent ones, and
compresses it with the encoder in use; the bytes ride in the CQI report's message on the
feedback link and the gNB decodes them when the message arrives, with the decoder it holds then
(``periods.csi_nmse_db``; a period whose report is still queued or on the link when it ends
is logged when the report arrives). Every ``interval_m`` metres the UE fine-tunes on its recent samples:
a SimPy process that waits the modelled compute time, then sends the decoder update (if the
scheme has one) as its own message on the same link; the update takes effect when it arrives,
and is logged then in ``updates``. One fine-tuning at a time: a trigger while one is in flight
(computing or on the link) waits for the next occasion.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import simpy

from simulator.feedback import Message


class CsiFeedback:
    """UE ``ue``'s CSI compression. ``track_x`` [n, ant, sc, 2] sampled every ``spacing_m`` metres."""

    def __init__(self, env: simpy.Environment, ue, codec, track_x: np.ndarray, spacing_m: float, feedback, rec,
                 *, interval_m: float, samples: int, trace: list | None = None):
        self.env, self.ue, self.codec, self.feedback, self.rec, self.trace = env, ue, codec, feedback, rec, trace
        self.track_x, self.spacing_m = track_x, float(spacing_m)
        self.interval_m = float(interval_m)
        self.recent: deque = deque(maxlen=int(samples))
        self.last_tune_m = 0.0
        self.busy = False
        self.in_flight = None                        # (FineTuning, t_us, travelled_m) not applied yet
        self.reports: deque = deque(maxlen=64)       # the latest reports (those that may still be in flight)

    def sample(self, distance_m: float) -> np.ndarray:
        """The track's CSI nearest to ``distance_m``, [ant, sc, 2]."""
        i = int(round(distance_m / self.spacing_m))
        if not 0 <= i < len(self.track_x):
            raise IndexError(f"UE {self.ue.id} at {distance_m:.2f} m is off the CSI track "
                             f"({(len(self.track_x) - 1) * self.spacing_m:.2f} m)")
        return self.track_x[i]

    def on_occasion(self, distance_m: float):
        """Compress the CSI at ``distance_m``; maybe start a fine-tuning. Returns the CsiReport."""
        x = self.sample(distance_m)
        self.recent.append(x)
        report = self.codec.report(x)
        self.reports.append(report)
        if (self.codec.scheme != "none" and not self.busy
                and distance_m - self.last_tune_m >= self.interval_m):
            self.busy = True
            self.env.process(self._fine_tune(distance_m))
        return report

    def on_report_arrival(self, report, arrival_us: int) -> None:
        self.codec.decode(report)
        if report.row is not None:         # its period ended while it was on the link
            self._write_late(report, arrival_us)

    def _write_late(self, report, arrival_us: int) -> None:
        report.row.update(csi_nmse_db=report.nmse_db, report_arrival_t_us=arrival_us)
        self.rec.append("periods", report.row)
        report.row = None

    def finish(self) -> None:
        """At the end of the run: write the rows of reports still on the link (NaN NMSE) and of a
        fine-tuning still computing or on the link (``applied_t_us`` -1)."""
        for report in self.reports:
            if report.row is not None:
                self._write_late(report, report.row["report_arrival_t_us"])
        if self.in_flight is not None:
            self._log(*self.in_flight, -1)
            self.in_flight = None

    def _fine_tune(self, distance_m: float):
        t0 = self.env.now
        travelled = distance_m - self.last_tune_m
        self.last_tune_m = distance_m
        ft = self.codec.fine_tune(np.stack(self.recent))
        self.in_flight = (ft, t0, travelled)
        yield self.env.timeout(ft.compute_us)
        if self.trace is not None:
            self.trace.append((self.env.now, "csi_fine_tuned", self.ue.id, ft.scheme, ft.bits))
        if ft.bits:
            msg = Message("csi_update", self.ue.id, ft.bits, None, created_us=self.env.now)
            msg.on_arrival = lambda m: self._applied(ft, t0, travelled, m.arrival_us)
            self.feedback.send(msg)
        else:
            self._applied(ft, t0, travelled, self.env.now)

    def _applied(self, ft, t0: int, travelled: float, t_us: int) -> None:
        ft.apply()
        self.busy = False
        self.in_flight = None
        self._log(ft, t0, travelled, t_us)

    def _log(self, ft, t0: int, travelled: float, t_us: int) -> None:
        self.rec.append("updates", {
            "t_us": t0, "ue": self.ue.id, "model": "conv_csi", "trigger": "distance", "trigger_value": travelled,
            "compute_us": ft.compute_us, "state_bytes": ft.state_bytes, "update_bits": ft.bits,
            "applied_t_us": t_us, "loss_before": ft.loss_before, "loss_after": ft.loss_after,
            "variant": ft.scheme, "update_bits_estimated": ft.bits_estimated, "update_nonzero": ft.nonzero,
            "update_weights": ft.num_weights,
        })
