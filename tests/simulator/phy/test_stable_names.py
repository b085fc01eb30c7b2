"""simulator/phy/stable_names.py: a function traced under the same identity gets the same graph names
(and so the same persistent-XLA-cache key) in every process, whatever was traced before it."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = r'''
import sys
from simulator.quiet import load_tensorflow
tf = load_tensorflow()
from simulator.phy.stable_names import stable_names
for i in range(int(sys.argv[1])):            # unrelated traces first
    tf.function(lambda x: tf.cond(x > float(i), lambda: x, lambda: -x))(tf.constant(1.0))
f = tf.function(lambda x: tf.cond(tf.reduce_sum(x) > 0, lambda: x * 2.0, lambda: -x), autograph=False,
                input_signature=[tf.TensorSpec([None], tf.float32)], jit_compile=True)
with stable_names("test chain"):
    cf = f.get_concrete_function()
print("NAME", cf.name.decode())
print(f.experimental_get_compiler_ir(tf.constant([1.0, 2.0]))(stage="hlo"))
'''


def _trace(preceding: int) -> str:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(preceding)], capture_output=True, text=True,
                          cwd=REPO, check=True)
    return proc.stdout


def test_the_same_identity_gives_the_same_names_and_hlo_in_every_process():
    from simulator.phy.stable_names import base_of

    a, b = _trace(0), _trace(3)
    assert a == b
    name = next(line for line in a.splitlines() if line.startswith("NAME"))
    assert int(name.rsplit("_", 1)[1]) - base_of("test chain") in range(0, 10 ** 6)
    assert "cond" in a                    # the inner functions' names are in the HLO, and equal too
