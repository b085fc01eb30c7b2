"""Process-independent names for the NR chains' traced graphs, so that the persistent XLA cache finds them.

TensorFlow names a traced function and every function inside it (``cond`` branches, ``while``
bodies) after a per-process counter (``ops.uid``): ``__inference__run_5383``. The persistent XLA
cache (``simulator/xla_cache.py``) keys a compiled program on that name and on its HLO, which carries
the inner names too. So a chain traced after anything else than in the previous process (another
MCS first, the compile-ahead thread's order, a LightTune model) got a new key and was compiled again
(measured: the same 52-PRB chain, 0.6 s from the cache in the same order, 3.3 s after three other
traces).

``stable_names(identity)`` draws those numbers during one trace from a counter that starts at a
value derived from ``identity`` (the chain's key), so the same chain gets the same names in every
process. Traces under it are serialised (the counter is swapped in module-wide); they hold the GIL
anyway. A process's first trace consumes one number more than later ones, so a trivial function is
traced once first. Numbers drawn meanwhile by other threads come from the same counter: still unique
(each identity has its own range of 10^6 numbers), at worst a cache miss.
"""
from __future__ import annotations

import hashlib
import itertools
import threading
from contextlib import contextmanager
from typing import Iterator

_LOCK = threading.Lock()
_STATE = {"first_trace_done": False}
SPAN = 10 ** 6          # numbers a trace may draw (a 52-PRB chain draws ~2,000)


def base_of(identity: str) -> int:
    """The counter's start for ``identity``: a multiple of SPAN above every number TensorFlow's own counter reaches."""
    return (1 + int.from_bytes(hashlib.sha256(identity.encode()).digest()[:4], "big")) * SPAN


@contextmanager
def stable_names(identity: str) -> Iterator[None]:
    """Trace under this to give the traced graphs names that depend on ``identity`` alone."""
    import tensorflow as tf
    from tensorflow.python.framework import ops

    with _LOCK:
        if not _STATE["first_trace_done"]:
            tf.function(lambda x: x + 1.0)(tf.constant(1.0))
            _STATE["first_trace_done"] = True
        counter = itertools.count(base_of(identity))
        original = ops.uid
        ops.uid = lambda: next(counter)
        try:
            yield
        finally:
            ops.uid = original
