"""Thread limits: --threads / AIRTUNE_THREADS / the command's default, applied to BLAS, OpenMP and TensorFlow."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from simulator.cli import main
from simulator.threads import ENV_VAR, threads_setting


def test_flag_then_environment_then_default(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert threads_setting(None, 1) == 1
    monkeypatch.setenv(ENV_VAR, "2")
    assert threads_setting(None, 1) == 2
    assert threads_setting(3, 1) == 3
    assert threads_setting(0, 1) == 0
    monkeypatch.setenv(ENV_VAR, "")
    assert threads_setting(None, 1) == 1


@pytest.mark.parametrize("argv, env, message", [
    (["--threads", "-1"], None, "--threads: must be >= 0"),
    ([], "two", f"{ENV_VAR}: expected a whole number of threads, got 'two'"),
    ([], "-3", f"{ENV_VAR}: must be >= 0"),
])
def test_bad_thread_counts_are_input_errors(monkeypatch, capsys, argv, env, message):
    if env is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, env)
    assert main(["run", "scenarios/quickstart.yaml", *argv]) == 2
    assert message in capsys.readouterr().err


_PROBE = """
import json, os, sys
import numpy
import tensorflow as tf
from threadpoolctl import threadpool_info
from simulator.threads import limit_threads
limit_threads(int(sys.argv[1]))
print(json.dumps({"blas": [i["num_threads"] for i in threadpool_info()],
                  "tf": [tf.config.threading.get_intra_op_parallelism_threads(),
                         tf.config.threading.get_inter_op_parallelism_threads()],
                  "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                         "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}}))
"""


def _probe(n: int) -> dict:
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}     # no *_NUM_THREADS from the test run
    out = subprocess.run([sys.executable, "-c", _PROBE, str(n)], env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_limit_threads_reaches_loaded_blas_imported_tensorflow_and_child_processes():
    got = _probe(3)                     # not the default on this 2-core machine
    assert got["blas"] and set(got["blas"]) == {3}
    assert got["tf"] == [3, 3]
    assert set(got["env"].values()) == {"3"}
    untouched = _probe(0)
    assert untouched["tf"] == [0, 0] and set(untouched["env"].values()) == {None}
