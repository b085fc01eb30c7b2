"""Tracing a link-level chain with and without the scrambling-sequence cache
(``simulator/phy/scrambling_cache.py``), and that the cache changes no output bit.

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_chain_trace.py
Each arm is a fresh process (one thread) that builds the LS+LMMSE chains of MCS 5 and 10 at 52 PRB,
30 kHz, and reports per MCS the traces of its programs (``Chain._trace``) and the first call (XLA
compilation and one run), then writes the outputs of one batch (compared by hash: equal). Measured
(2 cores, two other simulations running, load 3.1-3.9), when each MCS was one program traced without
autograph: the two traces (MCS 5 and 10) took 4.8 / 3.7 s without the cache and 3.1 / 3.0 s with it in
two runs (the first trace also fills the cache with the sequences every chain shares). With autograph
on, the same cache had cut them from 20.8 to 8.9 s: the sequence generation is Python, which autograph
made slow. The first call after it (XLA compilation and one run) is untouched. The bench asserts the
cache changes no bit and that the traces are shorter with it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.benchmark

ARM = r'''
import hashlib, json, sys, time
import numpy as np
from simulator.threads import limit_threads
limit_threads(1)
import simulator.phy.scrambling_cache as cache
if sys.argv[1] == "without":
    cache.install = lambda: None
from simulator.phy.nr_chain import ChainKey, get_chain
from tests.benchmarks.chain_inputs import chain_batch
out = {}
for mcs in (5, 10):
    ch = get_chain(ChainKey(52, 30, 1, 1, 1, "lmmse", mcs))
    t = time.perf_counter(); ch._trace(); trace = time.perf_counter() - t
    t = time.perf_counter()
    res = ch.evaluate(*chain_batch(ch))
    first = time.perf_counter() - t
    out[mcs] = dict(trace_s=trace, first_call_s=first, llr=hashlib.sha256(res.llr.tobytes()).hexdigest(),
                    ack=res.ack.tolist(), ber=res.ber.tolist())
print("RESULT" + json.dumps(out))
'''


def _arm(which: str) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", ARM, which], capture_output=True, text=True, env=env, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def test_scrambling_cache_cuts_the_trace_and_changes_no_bit():
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    without, with_cache = _arm("without"), _arm("with")
    for mcs in ("5", "10"):
        a, b = without[mcs], with_cache[mcs]
        print(f"\n[bench] 52 PRB LS+LMMSE chain, MCS {mcs}: trace {a['trace_s']:.1f} s without the cache, "
              f"{b['trace_s']:.1f} s with it; first call {a['first_call_s']:.1f} / {b['first_call_s']:.1f} s "
              f"(load average {load})", end="")
        assert (a["llr"], a["ack"], a["ber"]) == (b["llr"], b["ack"], b["ber"])
    total = {k: sum(r["trace_s"] for r in arm.values()) for k, arm in (("without", without), ("with", with_cache))}
    print(f"\n[bench] trace of both MCS: {total['without']:.1f} s without the cache, {total['with']:.1f} s with it")
    assert total["with"] < total["without"]
