"""Thread limits for BLAS, OpenMP and TensorFlow: one call at the start of a command.

At their defaults these libraries start one thread per core and spin while they wait, so a second
CPU-bound process on the machine slows every small BLAS call or TensorFlow op in the event loop by
making it wait for a core. ``airtune run``, ``data`` and ``train`` call :func:`limit_threads` with the
value of ``--threads``, else of ``AIRTUNE_THREADS``, else ``DEFAULT_THREADS``; the sweep workers
start with :func:`thread_env` ``(1)``.
"""
from __future__ import annotations

import os
import sys

ENV_VAR = "AIRTUNE_THREADS"
# Measured on 2 shared cores: 2 threads made no command faster (quickstart event loop, DeepRx and
# CSI data, DeepRx/FF/MLP training), and 1 keeps the event loop at speed beside a CPU-bound process.
DEFAULT_THREADS = 1
# Read by each library when it loads (BLAS, OpenMP) or when TensorFlow creates its thread pools.
LIBRARY_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def thread_env(n: int) -> dict[str, str]:
    """Environment variables that limit BLAS, OpenMP and TensorFlow to ``n`` threads in a process
    started with them."""
    return {key: str(n) for key in LIBRARY_ENV}


def threads_setting(flag: int | None, default: int = DEFAULT_THREADS) -> int:
    """``flag`` (``--threads``) if given, else ``AIRTUNE_THREADS`` if set, else ``default``.
    0 means the libraries' own defaults. Raises ValueError for a negative or non-integer value."""
    if flag is not None:
        value, source = flag, "--threads"
    elif os.environ.get(ENV_VAR, "").strip():
        source = ENV_VAR
        try:
            value = int(os.environ[ENV_VAR])
        except ValueError:
            raise ValueError(f"{ENV_VAR}: expected a whole number of threads, got {os.environ[ENV_VAR]!r}") from None
    else:
        return default
    if value < 0:
        raise ValueError(f"{source}: must be >= 0 (0: the libraries' defaults), got {value}")
    return value


def limit_threads(n: int) -> None:
    """Limit BLAS, OpenMP and TensorFlow to ``n`` threads each in this process and the processes it
    starts; ``n`` 0 leaves them at their defaults.

    Libraries not loaded yet read the environment variables when they load (TensorFlow: when it
    runs its first op); BLAS/OpenMP libraries already loaded are limited through threadpoolctl, and a
    TensorFlow already imported through ``tf.config.threading``, which must come before its first
    op: a TensorFlow that has run one keeps its thread pools.
    """
    if n == 0:
        return
    os.environ.update(thread_env(n))
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:   # already initialised (it has run an op): its pools stay as they are
            pass
