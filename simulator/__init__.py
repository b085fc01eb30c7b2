"""airtune's simulator package.

Arrow's buffers (the logs, and whatever reads them in the same process) come from the system
allocator unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise: pyarrow's default, mimalloc, keeps
the memory a long run's log merge frees, and the 600 s quickstart peaked at 1.13 GB instead of
0.97 GB (``tests/benchmarks/bench_memory.py``). Set here, before anything imports pyarrow.
"""
import os as _os

_os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
