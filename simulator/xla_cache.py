"""Compiled XLA programs kept across processes: TensorFlow's persistent compilation cache.

A link-level run compiles XLA programs per NR chain (MCS, layers, allocation, batch: an encoder and a
decoder per MCS, a link per modulation order; ``simulator/phy/nr_chain.py``), 1.3-1.5 s of compilation
per new MCS at 52 PRB on 2 idle cores, and every new process paid it again. With ``--tf_xla_persistent_cache_directory``
TensorFlow writes each compiled program to a file keyed by its HLO fingerprint and the device, and a
later process that builds the same program loads it instead of compiling; a changed program (another
TensorFlow, another chain) gets a new key. The key is taken after the graph is lowered to HLO, so a
cached program still costs its lowering (0.1-0.4 s per MCS at 52 PRB; cheap since the LDPC decoder's
reductions lower cheaply: simulator/phy/ldpc_updates.py). The tracing of the Python ``tf.function`` is not cached:
it is still paid per process (``tests/benchmarks/bench_xla_cache.py`` measures both).
The key includes the names TensorFlow gives the traced functions, which count up per process; the
chains are traced under ``simulator.phy.stable_names`` so that theirs do not depend on what was
traced before them (otherwise a run that visits its MCS in another order misses the cache).

The folder: ``$AIRTUNE_XLA_CACHE`` if set (``off`` disables the cache), else
``$XDG_CACHE_HOME/airtune/xla`` (``~/.cache/airtune/xla``). Entries are a few MB each; delete the
folder to reclaim the space. The flag must be set before TensorFlow loads: ``enable`` is called by
the command line and by sweep workers before their first TensorFlow import.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "AIRTUNE_XLA_CACHE"
FLAG = "--tf_xla_persistent_cache_directory"


def cache_dir() -> Path | None:
    """The cache folder, or None when ``AIRTUNE_XLA_CACHE=off``."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() == "off":
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "airtune" / "xla"


def enable() -> Path | None:
    """Add the cache flag to ``TF_XLA_FLAGS`` (kept if the user set one) for this process and the ones
    it starts; returns the folder, or None if disabled or the folder cannot be made (then programs are
    compiled as before)."""
    folder = cache_dir()
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if folder is None or FLAG in flags:
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={folder}".strip()
    return folder
