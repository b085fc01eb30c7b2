"""receiver_adaptation: targeted fine-tuning of one UE's neural receiver (seeds/000) in the event loop.

Watching. In the middle of every slot (so after that slot's HARQ feedback) the process looks at
the UE's latest ``window_slots`` transmissions whose feedback has reached the gNB and that were
received with the weights now in force (``LinkLevelBackend.record_slots`` keeps them). Among those
with ``ber_genie >= min_genie_ber`` the mean relative BER gap (ber - ber_genie) / ber_genie
(``models.deeprx.targeted.relative_ber_gap``, the paper's eq. 9) is the trigger value; when it
reaches ``gap_threshold`` and no job is in flight, the ``num_targets`` slots of the window with the
largest gaps become the targets (``select_targets``).

Targets on the network side. The job needs the targets' received grids, pilots, noise variances
and transmitted bits: the backend regenerates them from the transmissions' seeds and channels
(``LinkLevelBackend.slot_arrays``: the chain's own stateless draws, so exactly the grids the UE's
receiver saw). The simulator hands them to the network for free: the uplink cost of reporting a
received grid is not modelled. Only the recorded slots (a few SlotRecords per UE) are kept, and
only when the adaptation is on.

The job runs where the training pool is, on the network side (``models.deeprx.online``): it
starts from the weights the network knows the UE holds, takes its modelled compute time
(``network_gflops``), and its result is sent as a coded update: the weight delta quantised and
range-coded (the CSI feedback's ``UpdateCoder``) on a downlink pipe (FIFO, ``downlink_kbps``, then
``downlink_delay_ms``; separate from the PDSCH, which it does not slow down). The UE decodes the
bytes on arrival and receives every transmission from then on with the decoded weights
(``LinkLevelBackend.schedule_neural_weights``); until then it keeps the old ones. One job at a time
per UE: none starts before the previous update has arrived, and the next window only counts
transmissions received with the new weights.

Logging: one ``updates`` row per job, written when the update arrives (or at the end of the run
with ``applied_t_us`` -1 if it is still computing or on the pipe): ``t_us`` (trigger),
``variant``, ``target`` (the target transmissions' slots), ``trigger_value`` (the window's mean
gap), ``compute_us``, ``update_bits`` (coded), ``update_bits_estimated``, ``update_nonzero``,
``update_weights``, ``applied_t_us`` (arrival at the UE), ``loss_before``/``loss_after`` (the mean
target loss, before and after fine-tuning, unquantised) and ``ber_gap_before``/``ber_gap_after``:
the mean relative gap over the target transmissions as they were received (old weights), and the
same transmissions received again (same received grids: same payload, channel and noise; an empty
HARQ soft buffer, which the uncoded BER does not depend on) with the weights the UE applied, i.e.
decoded from the update's bytes, evaluated through the same compiled chain when the update arrives.
The genie BER is that of the same grids, so it is unchanged.
"""
from __future__ import annotations

import math

import numpy as np
import simpy

from simulator.feedback import Message


def _mean_gap(ber: np.ndarray, ber_genie: np.ndarray) -> float:
    from models.deeprx.targeted import relative_ber_gap

    gap = relative_ber_gap(ber, ber_genie)
    gap = gap[np.isfinite(gap)]
    return float(np.mean(gap)) if gap.size else math.nan


class ReceiverAdaptation:
    """UE ``ue``'s neural receiver adapted on the network side (see the module docstring).

    backend: a ``LinkLevelBackend`` with ``record_slots`` on; tuner: ``NetworkFineTuner``-like
    (``run(weights, targets, rng) -> JobResult``, ``width``); coder: an ``UpdateCoder`` (``receiver_update_coder``);
    downlink: a ``FeedbackLink`` the updates travel on; ``cfg``: the adaptation settings.
    """

    def __init__(self, env: simpy.Environment, ue: int, backend, tuner, coder, downlink, rec, cfg, *,
                 slot_us: int, k1_us: int, rng: np.random.Generator, trace: list | None = None):
        self.env, self.ue, self.backend, self.tuner, self.coder = env, int(ue), backend, tuner, coder
        self.downlink, self.rec, self.cfg, self.trace, self.rng = downlink, rec, cfg, trace, rng
        self.slot_us, self.k1_us = int(slot_us), int(k1_us)
        self.network_weights = [w.copy() for w in backend.neural_weights_at(self.ue, 0)]   # what the UE holds
        self.ue_weights = [w.copy() for w in self.network_weights]     # the UE's own copy (rebuilt from bytes)
        self.since_us = 0            # the window counts transmissions from here on (last arrival)
        self.in_flight: dict | None = None
        self.applied: list[dict] = []   # per arrival: bytes, the weights they were decoded on, the result

    def process(self):
        """The SimPy process: check in the middle of every slot."""
        yield self.env.timeout(self.slot_us // 2)
        while True:
            self.check()
            yield self.env.timeout(self.slot_us)

    def window(self) -> list:
        """The watched transmissions (SlotRecords), oldest first."""
        now, cfg = self.env.now, self.cfg
        recs = [r for r in self.backend.history[self.ue] if r.t_us >= self.since_us and r.t_us + self.k1_us <= now]
        return recs[-cfg.window_slots:]

    def check(self) -> None:
        if self.in_flight is not None:
            return
        cfg = self.cfg
        recs = self.window()
        if len(recs) < cfg.window_slots:
            return
        ber = np.array([r.ber for r in recs])
        genie = np.array([r.ber_genie for r in recs])
        watched = genie >= cfg.min_genie_ber
        gap = _mean_gap(ber[watched], genie[watched])
        if not gap >= cfg.gap_threshold:           # NaN (nothing watched) does not trigger
            return
        from models.deeprx.targeted import select_targets

        idx = select_targets(ber, genie, cfg.num_targets, cfg.min_genie_ber)
        if idx.size == 0:
            return
        targets = [recs[i] for i in idx]
        self.in_flight = {"t_us": self.env.now, "targets": targets, "trigger_value": gap}
        self.env.process(self._job())

    def _job(self):
        job = self.in_flight
        targets = job["targets"]
        arrays = self.backend.slot_arrays(targets, self.tuner.width)
        old = self.network_weights
        res = self.tuner.run(old, arrays, self.rng)
        coded = self.coder.encode(old, res.weights)
        job.update(result=res, coded=coded,
                   ber_gap_before=_mean_gap(np.array([r.ber for r in targets]),
                                            np.array([r.ber_genie for r in targets])))
        yield self.env.timeout(res.compute_us)
        if self.trace is not None:
            self.trace.append((self.env.now, "receiver_fine_tuned", self.ue, self.cfg.variant, coded.bits))
        self.network_weights = coded.quantized            # the network's copy: what it encoded
        msg = Message("receiver_update", self.ue, coded.bits, coded.data, created_us=self.env.now)
        msg.on_arrival = self._arrived
        self.downlink.send(msg)

    def _arrived(self, msg: Message) -> None:
        """At the UE: rebuild the weights from the bytes; they receive every transmission from now on."""
        job, self.in_flight = self.in_flight, None
        old = self.ue_weights
        new = self.coder.decode(old, msg.payload)
        self.backend.schedule_neural_weights(self.ue, new, msg.arrival_us)
        self.ue_weights = new
        self.since_us = msg.arrival_us
        targets = job["targets"]
        after = self.backend.evaluate_records(targets, new)
        gap_after = _mean_gap(after.ber, np.array([r.ber_genie for r in targets]))
        self.applied.append({"data": msg.payload, "old": old, "new": new, "t_us": msg.arrival_us,
                             "ber_after": after.ber, "ber_genie_after": after.ber_genie})
        self._log(job, msg.arrival_us, gap_after)

    def finish(self) -> None:
        """At the end of the run: log a job still computing or on the pipe (``applied_t_us`` -1)."""
        job, self.in_flight = self.in_flight, None
        if job is not None and "result" in job:
            self._log(job, -1, math.nan)

    def _log(self, job: dict, applied_t_us: int, gap_after: float) -> None:
        res, coded = job["result"], job["coded"]
        self.rec.append("updates", {
            "t_us": job["t_us"], "ue": self.ue, "model": "deeprx", "trigger": "ber_gap",
            "trigger_value": job["trigger_value"], "compute_us": res.compute_us, "state_bytes": res.state_bytes,
            "update_bits": coded.bits, "applied_t_us": applied_t_us, "loss_before": res.loss_before,
            "loss_after": res.loss_after, "variant": self.cfg.variant,
            "update_bits_estimated": coded.estimated_bits, "update_nonzero": coded.nonzero,
            "update_weights": coded.num_weights, "target": [int(r.slot) for r in job["targets"]],
            "ber_gap_before": job["ber_gap_before"], "ber_gap_after": gap_after,
        })
