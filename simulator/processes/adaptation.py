"""adaptation: the one path every online model update takes (DESIGN.md, "One adaptation path").

trigger (the model's own rule, in the process that watches it) -> job (``start``: the model's
:class:`models.base.Update`, which waits its modelled ``compute_us``) -> optional message on a
link (the coded update as ``update_bits``) -> apply when it arrives (the receiving side's process
calls ``apply``) -> one ``updates`` row (``row``). An update that sends nothing is handed, after
its compute time, to a local Store whose owner applies it when its own rule says (LightTune: at
the next CSI-RS occasion), or applied right away when no Store is given. Old weights stay in
force until ``apply``. Jobs still computing or on a link when the run ends are logged by
``finish`` with ``applied_t_us`` -1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import simpy

from models.base import Update
from simulator.link import Link, Message


@dataclass(eq=False)
class Job:
    """One update in flight: whose, what, when it was asked for; ``applied`` succeeds with the
    time it took effect."""
    ue: int
    update: Update
    trigger_t_us: int
    applied: simpy.Event = field(repr=False)


def row(job: Job, applied_t_us: int, measured: dict | None = None) -> dict:
    """The ``updates`` row of a job (``measured``: columns only known when it was applied)."""
    u = job.update
    return {
        "t_us": job.trigger_t_us, "ue": job.ue, "model": u.model, "trigger": u.trigger,
        "trigger_value": u.trigger_value, "compute_us": u.compute_us, "state_bytes": u.state_bytes,
        "update_bits": u.update_bits, "applied_t_us": applied_t_us, "loss_before": u.loss_before,
        "loss_after": u.loss_after, "variant": u.variant, "update_bits_estimated": u.update_bits_estimated,
        "update_nonzero": u.update_nonzero, "update_weights": u.update_weights,
        "target": None if u.target is None else list(u.target), "ber_gap_before": u.ber_gap_before,
        "ber_gap_after": (measured or {}).get("ber_gap_after", math.nan),
    }


class Adaptation:
    """Runs the update jobs of a run and writes their ``updates`` rows."""

    def __init__(self, env: simpy.Environment, rec, trace: list | None = None):
        self.env, self.rec, self.trace = env, rec, trace
        self._in_flight: list[Job] = []

    def start(self, ue: int, update: Update, *, link: Link | None = None, local: simpy.Store | None = None) -> Job:
        """Start a job now. ``link``: the coded update travels on it to the receiving side's
        inbox; else ``local``: handed to that Store after the compute time; else applied then."""
        if update.update_bits and link is None:
            raise ValueError(f"{update.model}: an update of {update.update_bits} bits needs a link to travel on")
        job = Job(int(ue), update, self.env.now, self.env.event())
        self._in_flight.append(job)
        self.env.process(self._run(job, link, local))
        return job

    def _run(self, job: Job, link: Link | None, local: simpy.Store | None):
        u = job.update
        yield self.env.timeout(u.compute_us)
        if self.trace is not None:
            self.trace.append((self.env.now, "update_computed", job.ue, u.model, u.update_bits))
        if link is not None:
            link.send(Message("update", job.ue, u.update_bits, job, created_us=self.env.now))
        elif local is not None:
            yield local.put(job)
        else:
            self.apply(job)

    def apply(self, job: Job) -> None:
        """The receiving side applies ``job`` now: the update takes effect, its row is written."""
        measured = job.update.apply()
        self._in_flight.remove(job)
        self.rec.append("updates", row(job, self.env.now, measured))
        job.applied.succeed(self.env.now)

    def finish(self) -> None:
        """At the end of the run: log the jobs still computing or on a link (``applied_t_us`` -1)."""
        for job in self._in_flight:
            self.rec.append("updates", row(job, -1))
        self._in_flight.clear()
