"""TensorFlow loaded the way airtune runs it: without its start-up lines on the terminal, and with
the persistent XLA compilation cache on (``simulator.xla_cache``).

TensorFlow 2.21's shared libraries log through absl before ``absl::InitializeLog()`` runs, so
``TF_CPP_MIN_LOG_LEVEL`` does not reach lines such as "All log messages before
absl::InitializeLog() ...", the oneDNN notice, the CUDA stub's "Could not find cuda drivers" and
the CPU-feature guard; each library prints them again when it loads. They are written to file
descriptor 2 from C++, so the only way to keep them off the terminal is to point that descriptor
elsewhere while TensorFlow loads and scans its devices. The lines are kept: they are written out
if the import fails, and ``--verbose`` (``AIRTUNE_VERBOSE=1``) shows them as they come, together
with TensorFlow's Python-side warnings (e.g. tf.function retracing), which are otherwise silenced.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import IO, Iterator

from simulator import xla_cache

VERBOSE_ENV = "AIRTUNE_VERBOSE"     # "1": library start-up lines and warnings are shown (also in sweep workers)


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1"


def set_verbose(on: bool) -> None:
    """Set for this process and the ones it starts (sweep workers)."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"
    if not on:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("ABSL_LOG_LEVEL", "3")


@contextlib.contextmanager
def _fd2_to(file: IO[bytes]) -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def load_tensorflow():
    """``import tensorflow`` with its start-up lines kept off the terminal (unless verbose); returns
    the module. Idempotent; the device scan it runs does not start TensorFlow's thread pools, so
    ``simulator.threads.limit_threads`` still applies afterwards."""
    if "tensorflow" not in sys.modules:
        xla_cache.enable()           # compiled XLA programs shared across processes (before TensorFlow loads)
    if "tensorflow" in sys.modules or verbose():
        import tensorflow as tf

        return tf
    with tempfile.TemporaryFile() as captured:
        try:
            with _fd2_to(captured):
                import tensorflow as tf

                tf.config.list_physical_devices()        # the device scan logs its own lines (cuInit)
        except BaseException:
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))   # what TensorFlow said before it failed
            raise
    tf.get_logger().setLevel("ERROR")
    return tf
