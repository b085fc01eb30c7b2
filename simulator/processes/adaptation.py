"""adaptation: the one path every online model update takes (DESIGN.md, "One adaptation path").

trigger (the model's own rule, in the process that watches it) -> job (``start``: the model's
:class:`models.base.Update`, which waits its modelled ``compute_us``) -> optional message on a
link (the coded update as ``update_bits``) -> apply when it arrives (the receiving side's process
calls ``apply``) -> one ``updates`` row (``row``). An update that sends nothing is handed, after
its compute time, to a local Store whose owner applies it when its own rule says (LightTune: at
the next CSI-RS occasion), or applied right away when no Store is given. Old weights stay in
force until ``apply``. Jobs still computing or on a link when the run ends are logged by
``finish`` with ``applied_t_us`` -1.

Jobs computed off the event loop (``offload``): a job whose modelled compute time is known before
its result (DeepRx's fine-tuning: FLOPs from its settings) can be computed in a worker thread while
the loop goes on simulating the slots of its compute time, as the network side would. The loop
waits for the result only when the simulated clock reaches ``compute_us`` and it is not ready yet,
so the logs are those of computing it in place (the job's inputs are fixed when it starts, and
nothing reads its result before then); only the wall time differs. One worker thread per run: jobs
run one after another in start order.
"""
from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import simpy

from models.base import Update
from simulator.link import Link, Message


@dataclass(eq=False)
class Offloaded:
    """An update being computed in the run's worker thread (``Adaptation.offload``)."""
    compute_us: int                  # its modelled compute time, known before the result
    future: Future = field(repr=False)

    def result(self) -> Update:
        """The update (blocks until the worker has computed it; re-raises what the job raised)."""
        update = self.future.result()
        if update.compute_us != self.compute_us:
            raise RuntimeError(f"{update.model}: the job was started with compute_us {self.compute_us} "
                               f"but its update says {update.compute_us}")
        return update


@dataclass(eq=False)
class Job:
    """One update in flight: whose, what, when it was asked for; ``applied`` succeeds with the
    time it took effect. ``update`` is an ``Offloaded`` until its compute time has passed."""
    ue: int
    update: Update | Offloaded
    trigger_t_us: int
    applied: simpy.Event = field(repr=False)

    def resolve(self) -> Update:
        """The job's update, waiting for the worker thread if it is still computing it."""
        if isinstance(self.update, Offloaded):
            self.update = self.update.result()
        return self.update


def row(job: Job, applied_t_us: int, measured: dict | None = None) -> dict:
    """The ``updates`` row of a job (``measured``: columns only known when it was applied)."""
    u = job.resolve()
    return {
        "t_us": job.trigger_t_us, "ue": job.ue, "model": u.model, "trigger": u.trigger,
        "trigger_value": u.trigger_value, "compute_us": u.compute_us, "state_bytes": u.state_bytes,
        "update_bits": u.update_bits, "applied_t_us": applied_t_us, "loss_before": u.loss_before,
        "loss_after": u.loss_after, "variant": u.variant, "update_bits_estimated": u.update_bits_estimated,
        "update_nonzero": u.update_nonzero, "update_weights": u.update_weights,
        "target": None if u.target is None else list(u.target), "ber_gap_before": u.ber_gap_before,
        "ber_gap_after": (measured or {}).get("ber_gap_after", math.nan),
    }


def _check_link(update: Update, link: Link | None) -> None:
    if update.update_bits and link is None:
        raise ValueError(f"{update.model}: an update of {update.update_bits} bits needs a link to travel on")


class Adaptation:
    """Runs the update jobs of a run and writes their ``updates`` rows."""

    def __init__(self, env: simpy.Environment, rec, trace: list | None = None):
        self.env, self.rec, self.trace = env, rec, trace
        self._in_flight: list[Job] = []
        self._worker: ThreadPoolExecutor | None = None

    def offload(self, compute: Callable[[], Update], compute_us: int) -> Offloaded:
        """Compute ``compute()`` in the run's worker thread; pass the result to ``start``, which
        waits for it after ``compute_us`` (what the update's own ``compute_us`` must be). ``compute``
        must not read state the event loop changes before then. Called from the event loop only."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="airtune-update")
        return Offloaded(int(compute_us), self._worker.submit(compute))

    def start(self, ue: int, update: Update | Offloaded, *, link: Link | None = None,
              local: simpy.Store | None = None) -> Job:
        """Start a job now. ``link``: the coded update travels on it to the receiving side's
        inbox; else ``local``: handed to that Store after the compute time; else applied then.
        ``update``: the update, or an ``Offloaded`` one still being computed."""
        if isinstance(update, Update):
            _check_link(update, link)
        job = Job(int(ue), update, self.env.now, self.env.event())
        self._in_flight.append(job)
        self.env.process(self._run(job, link, local))
        return job

    def _run(self, job: Job, link: Link | None, local: simpy.Store | None):
        yield self.env.timeout(job.update.compute_us)
        u = job.resolve()
        _check_link(u, link)
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
        measured = job.resolve().apply()
        self._in_flight.remove(job)
        self.rec.append("updates", row(job, self.env.now, measured))
        job.applied.succeed(self.env.now)

    def finish(self) -> None:
        """At the end of the run: log the jobs still computing or on a link (``applied_t_us`` -1;
        waits for one the worker thread is still computing), and stop the worker."""
        for job in self._in_flight:
            self.rec.append("updates", row(job, -1))
        self._in_flight.clear()
        self.close()

    def close(self) -> None:
        """Stop the worker thread: jobs not started are dropped, the one running is waited for (a
        thread inside TensorFlow cannot be stopped). Called by ``finish`` and when a run fails."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=True, cancel_futures=True)
