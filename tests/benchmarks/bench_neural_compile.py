"""The compile wall of the neural receiver's link-level chain: what the first transmission at a new
MCS costs when everything, the network included, is compiled into one program per MCS (``fused``, how
the chain was built before) and as the chain is built now (``split``, ``simulator/phy/nr_chain.py``:
the draws in graph mode, per MCS an encoder and a decoder, one link per modulation order and one
network program (``neural_program``) shared by every MCS), in a first process and in a second one that finds the first
one's programs in the persistent XLA cache (``simulator/xla_cache.py``).

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_neural_compile.py
Fresh processes (one thread each) build the neural chains of ``MCS`` at 4 PRB, 30 kHz, one DMRS
symbol (the grid of ``scenarios/deeprx_adaptation.yaml``) with ``deeprx_small_20k`` and time per MCS,
in the order given (QPSK, 16-QAM, 64-QAM, QPSK again), the traces, the first call and a second call of
the same batch (2); a new MCS costs trace + first call - second call. Each build gives the same ACKs
and LLRs in both processes (``split`` draws its noise outside XLA: other values than ``fused``).

Issue 15 item 1 asks for <= 3 s at the first transmission of a new MCS, or a second run paying
<= 10 % of the first's compile time; both are printed.

Measured: see docs/validation.md (the row of this benchmark).
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

MCS = (5, 12, 20, 9)
CHECKPOINT = "models/checkpoints/deeprx_small_20k.json"
REPO = Path(__file__).resolve().parents[2]

ARM = r'''
import json, sys, time
import numpy as np
from simulator.threads import limit_threads
limit_threads(1)
from simulator.quiet import load_tensorflow
tf = load_tensorflow()
from models.deeprx.model import DeepRx
from simulator.phy.nr_chain import ChainKey, ChainOutput, get_chain
from simulator.phy.stable_names import stable_names
from tests.benchmarks.chain_inputs import chain_batch
mode, checkpoint, mcs_list = sys.argv[1], sys.argv[2], [int(m) for m in sys.argv[3].split(",")]
neural = DeepRx.load(checkpoint)
out = {}
for mcs in mcs_list:
    ch = get_chain(ChainKey(4, 30, 1, 1, 1, "neural", mcs), neural)
    args = chain_batch(ch, 2)
    if mode == "fused":     # everything, the network included, in the MCS's one program, as before
        def fused(seeds, h, no, prev, beta, params, ch=ch):
            bits, w = ch._draw(seeds)
            c = ch._encode(bits)
            y, ber_ls, ber_genie, eesm = ch._link_front(c, w, h, no, beta)
            pilots = tf.broadcast_to(tf.constant(ch.pilots)[None], [tf.shape(y)[0], *ch.pilots.shape])
            crc, ber, comb = ch._back(neural.llr_grid(y, pilots, no, params), c, prev)
            return crc, ber, eesm, comb, ber_genie, ber_ls
        sig = [tf.TensorSpec([None, 6], tf.int64), tf.TensorSpec([None, *ch.h_shape], tf.complex64),
               tf.TensorSpec([None], tf.float32), tf.TensorSpec([None, ch.num_coded_bits], tf.float32),
               tf.TensorSpec([], tf.float32), [tf.TensorSpec(w.shape, tf.as_dtype(w.dtype)) for w in neural.weights()]]
        fn = tf.function(fused, jit_compile=True, autograph=False, input_signature=sig)
        t = time.perf_counter()
        with stable_names(f"fused {ch.key!r}"):
            fn.get_concrete_function()
        trace = time.perf_counter() - t
        def call():
            res = fn(*[tf.constant(a) for a in args], tf.constant(ch.beta, tf.float32),
                     [tf.constant(w) for w in neural.weights()])
            return ChainOutput(*(r.numpy() for r in res))
    else:
        t = time.perf_counter(); ch._trace(); trace = time.perf_counter() - t
        call = lambda: ch.evaluate(*args)
    calls = []
    for _ in range(2):
        t = time.perf_counter(); res = call(); calls.append(time.perf_counter() - t)
    out[mcs] = dict(trace_s=trace, first_call_s=calls[0], second_call_s=calls[1], ack=res.ack.tolist(),
                    llr=res.llr[:, :64].tolist())
print("RESULT" + json.dumps(out))
'''


def _arm(mode: str, cache: str) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "AIRTUNE_XLA_CACHE": cache}
    env.pop("TF_XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, "-c", ARM, mode, CHECKPOINT, ",".join(map(str, MCS))],
                          capture_output=True, text=True, env=env, check=True, cwd=REPO)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def _cost_s(r: dict) -> float:
    """Trace + compilation of one MCS: its traces, its first call less a compiled call."""
    return r["trace_s"] + max(0.0, r["first_call_s"] - r["second_call_s"])


def test_neural_compile_wall(tmp_path):
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    arms = {}
    for mode in ("fused", "split"):
        cache = str(tmp_path / mode)
        arms[mode, "first"], arms[mode, "second"] = _arm(mode, cache), _arm(mode, cache)
    for mcs in map(str, MCS):
        row = [arms[k][mcs] for k in arms]
        print(f"\n[bench] MCS {mcs}: " + ", ".join(f"{m} {p} {_cost_s(r):.2f} s (trace {r['trace_s']:.2f})"
                                                     for (m, p), r in zip(arms, row)), end="")
        for mode in ("fused", "split"):     # the same programs give the same bits in both processes
            a, b = arms[mode, "first"][mcs], arms[mode, "second"][mcs]
            assert a["ack"] == b["ack"]
            np.testing.assert_allclose(a["llr"], b["llr"], rtol=1e-4, atol=1e-3)
    total = {k: sum(_cost_s(r) for r in arm.values()) for k, arm in arms.items()}
    later = {k: max(_cost_s(arm[str(m)]) for m in MCS[1:]) for k, arm in arms.items()}
    print(f"\n[bench] total over {len(MCS)} MCS: " + ", ".join(f"{m} {p} {t:.1f} s" for (m, p), t in total.items())
          + f"; load average {load}")
    print("[bench] worst MCS after the first: " + ", ".join(f"{m} {p} {t:.2f} s" for (m, p), t in later.items()))
    ratio = total["split", "second"] / total["split", "first"]
    print(f"[bench] issue 15 item 1: a new MCS after the first <= 3 s in a second process: "
          f"{'met' if later['split', 'second'] <= 3.0 else 'NOT met'}; in a first process: "
          f"{'met' if later['split', 'first'] <= 3.0 else 'NOT met'}; second / first process {ratio:.0%}")
    assert total["split", "first"] < total["fused", "first"]
    assert total["split", "second"] < total["fused", "second"]
