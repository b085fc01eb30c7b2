"""The ray-tracing worker: Sionna RT (mitsuba / drjit) runs in a child process.

When TensorFlow is loaded before drjit in one process, drjit's libLLVM binds to the LLVM symbols
TensorFlow exports and the process aborts at exit ("free(): invalid pointer" in llvm::cl::opt::~opt
from libtensorflow_framework). The worker (``python -m simulator.channel.rt_worker``) imports drjit
without TensorFlow, so callers may have imported TensorFlow already. For the same reason
``import sionna`` must stay lazy (sionna-no-rt's ``sionna/__init__.py``): sionna-rt's own ``__init__``
imports ``sionna.rt`` eagerly; ``make install`` restores the lazy one.

``run_in_worker("package.module:function", *args)`` calls a module function there (the module is
imported in the worker, so it may import ``sionna.rt``) and returns its result; arguments and results
travel pickled. The worker is started once and kept alive, so what its modules cache (loaded
scenes) serves later calls.
"""
from __future__ import annotations

import atexit
import importlib
import os
import pickle
import subprocess
import sys
from pathlib import Path


class _Worker:
    """A child ``python -m simulator.channel.rt_worker`` answering pickled (function, args) on its stdin
    with pickled ("ok", result) / ("error", exception) on its stdout."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "simulator.channel.rt_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, cwd=str(Path(__file__).resolve().parents[2]))

    def call(self, function: str, *args):
        pickle.dump((function, args), self.proc.stdin)
        self.proc.stdin.flush()
        try:
            status, value = pickle.load(self.proc.stdout)
        except EOFError:
            raise RuntimeError(f"the ray-tracing worker died (exit code {self.proc.wait()})") from None
        if status == "error":
            raise value
        return value

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


_WORKER: _Worker | None = None


def run_in_worker(function: str, *args):
    """``function`` ("package.module:name", a module function) called with ``args`` in the ray-tracing
    worker process (started once)."""
    global _WORKER
    if _WORKER is None or _WORKER.proc.poll() is not None:
        _WORKER = _Worker()
        atexit.register(_WORKER.close)
    return _WORKER.call(function, *args)


def _serve():
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                                         # prints of the libraries go to stderr
    while True:
        try:
            function, args = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        try:
            module, name = function.split(":")
            reply = ("ok", getattr(importlib.import_module(module), name)(*args))
        except Exception as exc:                          # noqa: BLE001 - handed to the caller
            reply = ("error", exc)
        pickle.dump(reply, out)
        out.flush()


if __name__ == "__main__":
    _serve()
