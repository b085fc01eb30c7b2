"""receiver_adaptation: targeted fine-tuning of one UE's neural receiver (seeds/000) in the event loop.

Watching. In the middle of every slot (so after that slot's HARQ feedback) the process looks at
the UE's latest ``window_slots`` transmissions whose feedback has reached the gNB and that were
received with the weights now in force (the link_level backend's slot records keep them). Among
those with ``ber_genie >= min_genie_ber`` the mean relative BER gap (ber - ber_genie) / ber_genie
(the adapter's ``relative_ber_gap``, the paper's eq. 9) is the trigger value; when it
reaches ``gap_threshold`` and no job is in flight, the ``num_targets`` slots of the window with the
largest gaps become the targets (``select_targets``).

Targets on the network side. The job needs the targets' received grids, pilots, noise variances
and transmitted bits: the backend regenerates them from the transmissions' seeds and channels
(the chain's own stateless draws, so exactly the grids the UE's receiver saw). The simulator
hands them to the network for free: the uplink cost of reporting a received grid is not
modelled. Only the recorded slots (a few per UE) are kept, and only when the adaptation is on.

The job runs where the training pool is, on the network side (a ``models.base.ReceiverAdapter``):
it starts from the weights the network knows the UE holds, takes its modelled compute time
(``network_gflops``; the wall-clock computation runs in the run's worker thread meanwhile, while
the loop simulates those slots: ``Adaptation.offload``), and its result is sent as a coded update
on the adaptation path: the weight delta quantised and range-coded (the CSI feedback's ``UpdateCoder``) on a downlink pipe (FIFO,
``downlink_kbps``, then ``downlink_delay_ms``; separate from the PDSCH, which it does not slow
down). The UE decodes the bytes on arrival (``ue_inbox_process`` applies the update) and
receives every transmission from then on with the decoded weights; until then it keeps the old
ones. One job at a time per UE: none starts before the previous update has arrived, and the next
window only counts transmissions received with the new weights.

Logging (one ``updates`` row per job, ``simulator/processes/adaptation.py``): ``t_us`` (trigger),
``variant``, ``target`` (the target transmissions' slots), ``trigger_value`` (the window's mean
gap), ``compute_us``, ``update_bits`` (coded), ``update_bits_estimated``, ``update_nonzero``,
``update_weights``, ``applied_t_us`` (arrival at the UE; -1 if still computing or on the pipe at
the end), ``loss_before``/``loss_after`` (the mean target loss, before and after fine-tuning,
unquantised) and ``ber_gap_before``/``ber_gap_after``: the mean relative gap over the target
transmissions as they were received (old weights), and the same transmissions received again
(same received grids: same payload, channel and noise; an empty HARQ soft buffer, which the
uncoded BER does not depend on) with the weights the UE applied, i.e. decoded from the update's
bytes, evaluated through the same compiled chain when the update arrives. The genie BER is that
of the same grids, so it is unchanged.
"""
from __future__ import annotations

import math

import numpy as np

from models.base import ReceiverAdapter, Update
from simulator.link import Link
from simulator.processes.context import RunContext


class ReceiverAdaptation:
    """UE ``ue``'s neural receiver adapted on the network side (see the module docstring).

    backend: the link_level backend with slot records on; tuner: the network side's
    ``ReceiverAdapter``; coder: an ``UpdateCoder``; downlink: the ``Link`` the updates travel on;
    ``cfg``: the adaptation settings.
    """

    def __init__(self, run: RunContext, ue: int, backend, tuner: ReceiverAdapter, coder, downlink: Link, cfg, *,
                 k1_us: int, rng: np.random.Generator):
        self.run, self.ue, self.backend, self.tuner, self.coder = run, int(ue), backend, tuner, coder
        self.downlink, self.cfg, self.rng = downlink, cfg, rng
        self.k1_us = int(k1_us)
        self.network_weights = [w.copy() for w in backend.neural_weights_at(self.ue, 0)]   # what the UE holds
        self.ue_weights = [w.copy() for w in self.network_weights]     # the UE's own copy (rebuilt from bytes)
        self.since_us = 0            # the window counts transmissions from here on (last arrival)
        self.job = None              # the job in flight (not applied yet)
        self.applied: list[dict] = []   # per arrival: bytes, the weights they were decoded on, the result

    def _mean_gap(self, ber: np.ndarray, ber_genie: np.ndarray) -> float:
        gap = self.tuner.relative_ber_gap(ber, ber_genie)
        gap = gap[np.isfinite(gap)]
        return float(np.mean(gap)) if gap.size else math.nan

    def process(self):
        """The SimPy process: check in the middle of every slot."""
        env, slot_us = self.run.env, self.run.slot_us
        yield env.timeout(slot_us // 2)
        while True:
            self.check()
            yield env.timeout(slot_us)

    def window(self) -> list:
        """The watched transmissions (slot records), oldest first."""
        now, cfg = self.run.env.now, self.cfg
        recs = [r for r in self.backend.history[self.ue] if r.t_us >= self.since_us and r.t_us + self.k1_us <= now]
        return recs[-cfg.window_slots:]

    def check(self) -> None:
        if self.job is not None and not self.job.applied.triggered:
            return
        cfg = self.cfg
        recs = self.window()
        if len(recs) < cfg.window_slots:
            return
        ber = np.array([r.ber for r in recs])
        genie = np.array([r.ber_genie for r in recs])
        watched = genie >= cfg.min_genie_ber
        gap = self._mean_gap(ber[watched], genie[watched])
        if not gap >= cfg.gap_threshold:           # NaN (nothing watched) does not trigger
            return
        idx = self.tuner.select_targets(ber, genie, cfg.num_targets, cfg.min_genie_ber)
        if idx.size == 0:
            return
        targets = [recs[i] for i in idx]
        self.job = self.run.adaptation.start(self.ue, self._update(targets, gap), link=self.downlink)

    def _update(self, targets: list, gap: float):
        """Fine-tune on the network side, in the run's worker thread (the targets' grids are taken
        here, from the backend, which only the event loop touches); the update is applied by the UE
        when its bytes arrive."""
        arrays = self.backend.history.slot_arrays(targets, self.tuner.width)
        return self.run.adaptation.offload(lambda: self._fine_tune(targets, arrays, gap),
                                           self.tuner.compute_us(len(targets)))

    def _fine_tune(self, targets: list, arrays: dict, gap: float) -> Update:
        """The job (worker thread). It reads ``network_weights`` and ``rng``, which nothing else uses
        while the job is in flight (one job at a time per UE)."""
        old = self.network_weights
        res = self.tuner.run(old, arrays, self.rng)
        coded = self.coder.encode(old, res.weights)
        self.network_weights = coded.quantized            # the network's copy: what it encoded
        genie = np.array([r.ber_genie for r in targets])

        def apply() -> dict:
            """At the UE: rebuild the weights from the bytes; they receive every transmission from now on."""
            now = self.run.env.now
            old_ue = self.ue_weights
            new = self.coder.decode(old_ue, coded.data)
            self.backend.schedule_neural_weights(self.ue, new, now)
            self.ue_weights = new
            self.since_us = now
            after = self.backend.history.evaluate_records(targets, new)
            self.applied.append({"data": coded.data, "old": old_ue, "new": new, "t_us": now,
                                 "ber_after": after.ber, "ber_genie_after": after.ber_genie})
            return {"ber_gap_after": self._mean_gap(after.ber, genie)}

        return Update(model="deeprx", trigger="ber_gap", trigger_value=gap, compute_us=res.compute_us, apply=apply,
                      update_bits=coded.bits, payload=coded.data, state_bytes=res.state_bytes,
                      loss_before=res.loss_before, loss_after=res.loss_after, variant=self.cfg.variant,
                      update_bits_estimated=coded.estimated_bits, update_nonzero=coded.nonzero,
                      update_weights=coded.num_weights, target=tuple(int(r.slot) for r in targets),
                      ber_gap_before=self._mean_gap(np.array([r.ber for r in targets]), genie))
