"""Compiling the link-level programs a run is about to need, in a background thread.

A new NR chain (MCS, layers, allocation, batch: ``simulator/phy/nr_chain.py``) traces and XLA-compiles
its encoder and decoder on its first call, and the link they share when it is the first MCS of its
modulation order: ~1.4 s, ~2.2-2.6 s at a new modulation order, at 52 PRB on 2 idle cores
(``tests/benchmarks/bench_xla_cache.py``), and the run waits for it. Outer-loop
link adaptation moves the MCS a step at a time, so the next program a run needs is almost always an
MCS next to the one in use. ``CompileAhead`` keeps a worker thread compiling the ``reach`` MCS on
either side of the last one evaluated (nearest first: m+1, m-1, m+2, ...) while the run goes on;
when the run reaches one, it is ready, or the run waits only for the rest of its compilation.
TensorFlow releases the GIL while it compiles and executes, so on a machine with a core to spare the
compilation costs the run nothing; on a fully loaded one it costs what it takes from the other work.

A program is compiled by calling it once on padding inputs (unit channel, no previous LLRs; its
outputs are dropped): the chain draws everything from the per-transmission seeds it is given, so a
warm-up call changes nothing the run computes (``tests/simulator/phy/test_compile_ahead.py``: the same
logs with and without). Programs compiled ahead go into the persistent XLA cache like any other
(``simulator/xla_cache.py``).

The worker never raises into the run: a program it fails to compile (e.g. an MCS the neural receiver
cannot demap) is left for the run, which compiles it itself if it ever needs it and reports the error
there; the failures are kept in ``errors``.

``AIRTUNE_COMPILE_AHEAD=off`` in the environment turns it off whatever the scenario says (the test
suite sets it: its runs are a few hundred slots, over before a neighbour's program is needed, and
the compilations would only load the machine); the results are the same either way.
"""
from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from typing import Callable, Hashable

Program = Hashable
ENV_VAR = "AIRTUNE_COMPILE_AHEAD"


def enabled() -> bool:
    """False when ``AIRTUNE_COMPILE_AHEAD=off``."""
    return os.environ.get(ENV_VAR, "").strip().lower() != "off"


_LIVE: "weakref.WeakSet[CompileAhead]" = weakref.WeakSet()


@atexit.register
def _finish_at_exit() -> None:
    """Let a compilation in progress end before the interpreter does: a daemon thread stopped inside
    TensorFlow's C++ at interpreter shutdown aborts the process ("FATAL: exception not rethrown")."""
    for ahead in list(_LIVE):
        ahead.close()
        ahead.join(timeout_s=120)


class CompileAhead:
    """Background compilation of the programs next to the ones a run uses.

    ``compile_program(program)``: compiles ``program`` (blocking); ``is_compiled(program)``: whether it
    is; both are called from the worker thread (``is_compiled`` from the run's too).
    """

    def __init__(self, compile_program: Callable[[Program], None], is_compiled: Callable[[Program], bool]):
        self._compile = compile_program
        self._is_compiled = is_compiled
        self._cv = threading.Condition()
        self._wanted: list[Program] = []
        self._busy: Program | None = None          # what the worker is compiling
        self._claimed: set[Program] = set()        # programs the run compiles itself
        self._failed: set[Program] = set()         # not tried again
        self._stop = False
        self._thread: threading.Thread | None = None
        self.compiled: list[tuple[Program, float]] = []     # (program, seconds) compiled by the worker
        self.errors: list[tuple[Program, str]] = []

    def want(self, programs: list[Program]) -> None:
        """Replace the queue with ``programs`` (in order of preference), less the compiled ones."""
        with self._cv:
            self._wanted = [p for p in programs if p != self._busy and p not in self._claimed
                            and p not in self._failed and not self._is_compiled(p)]
            if self._wanted and self._thread is None and not self._stop:
                self._thread = threading.Thread(target=self._work, name="airtune-compile-ahead", daemon=True)
                self._thread.start()
                _LIVE.add(self)
            self._cv.notify_all()

    def claim(self, program: Program) -> float:
        """The run is about to call ``program``: wait while the worker compiles it, else keep the worker
        off it (the run compiles it in its own call). Returns the seconds waited."""
        t0 = time.perf_counter()
        with self._cv:
            while self._busy == program:
                self._cv.wait()
            if not self._is_compiled(program):
                self._claimed.add(program)
            if program in self._wanted:
                self._wanted.remove(program)
        return time.perf_counter() - t0

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Block until nothing is queued or compiling (benchmarks, tests); False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: self._busy is None and (not self._wanted or self._stop), timeout_s)

    def close(self) -> None:
        """Stop after the program in progress (not waited for here; at interpreter exit it is)."""
        with self._cv:
            self._stop = True
            self._wanted = []
            self._cv.notify_all()

    def join(self, timeout_s: float | None = None) -> None:
        """Wait for the worker thread to end (after ``close``)."""
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._stop and not self._wanted:
                    self._cv.wait()
                if self._stop:
                    return
                program = self._wanted.pop(0)
                if program in self._claimed or self._is_compiled(program):
                    continue
                self._busy = program
            t0 = time.perf_counter()
            try:
                self._compile(program)
                self.compiled.append((program, time.perf_counter() - t0))
            except Exception as exc:  # noqa: BLE001 - the run compiles it itself and raises there
                self.errors.append((program, f"{type(exc).__name__}: {exc}"))
                self._failed.add(program)
            finally:
                with self._cv:
                    self._busy = None
                    self._cv.notify_all()
