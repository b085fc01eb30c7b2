"""The compile wall of the link-level chains: what the first transmission at a new MCS costs, in a
first process and in a second one that finds the first one's programs in the persistent XLA cache
(``simulator/xla_cache.py``), for the chain as built now (per MCS an encoder and a decoder around a
link shared by every MCS of a modulation order: ``simulator/phy/nr_chain.py``), the same chain in one
program per MCS (how it was compiled before) and that one program as Sionna's defaults build it.

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_xla_cache.py
Fresh processes (one thread each) build the LS+LMMSE chains of ``MCS`` at 52 PRB, 30 kHz, in that
order (QPSK, 16-QAM, 16-QAM again, 64-QAM), and time per MCS the traces (``get_concrete_function``),
the first call and a second call of the same batch; a new MCS costs trace + first call - second call
(its compilation). Arms:
- ``sionna``: one program with Sionna's own LDPC node updates and autograph on, no cache;
- ``one``: one program per MCS (simulator/phy/ldpc_updates.py, ``autograph=False``), first and second
  process sharing a cache folder;
- ``split``: the chain as built now, first and second process sharing another cache folder.
``sionna`` and ``one`` give the same ACKs and LLRs (to float rounding), and so do the two ``split``
processes; ``split`` draws its payload and noise outside XLA (TensorFlow's graph-mode stateless
kernels, whose values differ from XLA's), so its outputs are other draws of the same statistics.

Issue 15 item 1 asks for <= 3 s of compilation at the first transmission of a new MCS, or a second
run paying <= 10 % of the first's compile time; the bench prints both.

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

MCS = (5, 10, 11, 17)

ARM = r"""
import json, sys, time
from simulator.threads import limit_threads
limit_threads(1)
from simulator.quiet import load_tensorflow
tf = load_tensorflow()
if sys.argv[1] == "sionna":     # Sionna's node updates and autograph, as the chain was built before
    from sionna.phy.fec.ldpc import decoding
    import simulator.phy.ldpc_updates as ours
    ours.cn_update_phi, ours.vn_update_sum = decoding.cn_update_phi, decoding.vn_update_sum
from simulator.phy.nr_chain import ChainKey, get_chain
from tests.benchmarks.chain_inputs import chain_batch, one_program
out = {}
for mcs in [int(m) for m in sys.argv[2].split(",")]:
    ch = get_chain(ChainKey(52, 30, 1, 1, 1, "lmmse", mcs))
    args = chain_batch(ch)
    t = time.perf_counter()
    if sys.argv[1] == "split":
        ch._trace()
        call = lambda: tuple(ch.evaluate(*args)[:4])
    else:
        call, fn = one_program(ch, tf, autograph=sys.argv[1] == "sionna")
        fn.get_concrete_function()
        call = (lambda call=call: call(*args))
    trace = time.perf_counter() - t
    calls = []
    for _ in range(2):
        t = time.perf_counter(); res = call(); calls.append(time.perf_counter() - t)
    out[mcs] = dict(trace_s=trace, first_call_s=calls[0], second_call_s=calls[1], ack=res[0].tolist(),
                    llr=res[3][:, :256].tolist())
print("RESULT" + json.dumps(out))
"""


def _arm(kind: str, cache: str) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "AIRTUNE_XLA_CACHE": cache}
    env.pop("TF_XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, "-c", ARM, kind, ",".join(map(str, MCS))], capture_output=True,
                          text=True, env=env, check=True, cwd=Path(__file__).resolve().parents[2])
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def _compile_s(r: dict) -> float:
    return max(0.0, r["first_call_s"] - r["second_call_s"])


def _cost_s(r: dict) -> float:
    """What the first transmission at the MCS waits for: its traces and its compilation."""
    return r["trace_s"] + _compile_s(r)


def test_compile_wall(tmp_path):
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    arms = {("sionna", "first"): _arm("sionna", "off")}
    for kind in ("one", "split"):
        cache = str(tmp_path / kind)
        arms[kind, "first"], arms[kind, "second"] = _arm(kind, cache), _arm(kind, cache)
    for mcs in map(str, MCS):
        row = [arms[k][mcs] for k in arms]
        print(f"\n[bench] MCS {mcs}: " + ", ".join(
            f"{k} {p} {_cost_s(r):.2f} s (compile {_compile_s(r):.2f}, trace {r['trace_s']:.2f})"
            for (k, p), r in zip(arms, row)), end="")
        # the same program gives the same bits; the split chain draws its noise outside XLA (other values)
        for a, b in ((("one", "first"), ("sionna", "first")), (("one", "second"), ("one", "first")),
                     (("split", "second"), ("split", "first"))):
            assert arms[a][mcs]["ack"] == arms[b][mcs]["ack"]
            np.testing.assert_allclose(arms[a][mcs]["llr"], arms[b][mcs]["llr"], rtol=1e-4, atol=1e-3)
    a = arms["split", "first"]
    print(f"\n[bench] a call of 8 transmissions: {np.median([r['second_call_s'] for r in a.values()]) * 1e3:.0f} ms "
          f"split, {np.median([r['second_call_s'] for r in arms['one', 'first'].values()]) * 1e3:.0f} ms in one program")
    compile_total = {k: sum(_compile_s(r) for r in arm.values()) for k, arm in arms.items()}
    cost_total = {k: sum(_cost_s(r) for r in arm.values()) for k, arm in arms.items()}
    print(f"[bench] over {len(MCS)} MCS, compile (trace + compile): " + ", ".join(
        f"{k} {p} {compile_total[k, p]:.1f} s ({cost_total[k, p]:.1f} s)" for k, p in arms) + f"; load average {load}")
    worst = {k: (max(_compile_s(r) for r in arm.values()), max(_cost_s(r) for r in arm.values()))
             for k, arm in arms.items()}
    ratio = compile_total["split", "second"] / compile_total["split", "first"]
    print(f"[bench] issue 15 item 1, split, first process: worst new MCS {worst['split', 'first'][0]:.2f} s of "
          f"compilation ({worst['split', 'first'][1]:.2f} s with its traces): "
          f"{'met' if worst['split', 'first'][0] <= 3.0 else 'NOT met'} (<= 3 s); second / first process compile "
          f"{ratio:.0%}: {'met' if ratio <= 0.10 else 'NOT met'} (<= 10 %)")
    # the shared link: a 16-QAM MCS after another one compiles less than the same MCS in one program
    assert _cost_s(a[str(MCS[2])]) < _cost_s(arms["one", "first"][str(MCS[2])])
    assert compile_total["split", "second"] <= 0.6 * compile_total["split", "first"]      # the cache is used
    assert compile_total["one", "first"] <= 0.5 * compile_total["sionna", "first"]
