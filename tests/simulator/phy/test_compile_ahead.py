"""Compilation ahead of need (simulator/phy/compile_ahead.py): the worker's queue, waiting and errors
with a stand-in compile step; then (slow: each program compiles for ~5-10 s) the link-level backend:
a program the worker compiled gives the run the same outputs as one the run compiled itself, and an
engine run's logs do not depend on it."""
from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from simulator.phy.compile_ahead import CompileAhead


class _Recorder:
    """Compiles by sleeping; remembers the order."""

    def __init__(self, seconds: float = 0.0, fail: set | None = None):
        self.seconds, self.fail = seconds, fail or set()
        self.done: list = []
        self.started = threading.Event()

    def compile(self, p):
        self.started.set()
        time.sleep(self.seconds)
        if p in self.fail:
            raise ValueError(f"cannot compile {p}")
        self.done.append(p)

    def is_compiled(self, p):
        return p in self.done


def test_worker_compiles_what_is_wanted_in_order_and_skips_compiled_and_claimed():
    r = _Recorder()
    r.done.append("x")                      # compiled already
    ahead = CompileAhead(r.compile, r.is_compiled)
    ahead.claim("c")                        # the run compiles c itself
    ahead.want(["a", "x", "c", "b"])
    assert ahead.wait_idle(5)
    assert r.done == ["x", "a", "b"]
    assert [p for p, _ in ahead.compiled] == ["a", "b"]
    ahead.close()


def test_want_replaces_the_queue():
    r = _Recorder(seconds=0.2)
    ahead = CompileAhead(r.compile, r.is_compiled)
    ahead.want(["a", "b", "c"])
    assert r.started.wait(5)                # a is being compiled
    ahead.want(["d"])                       # b and c are no longer wanted
    assert ahead.wait_idle(5)
    assert r.done == ["a", "d"]
    ahead.close()


def test_claim_waits_for_the_program_in_progress():
    r = _Recorder(seconds=0.5)
    ahead = CompileAhead(r.compile, r.is_compiled)
    ahead.want(["a"])
    assert r.started.wait(5)
    waited = ahead.claim("a")
    assert r.done == ["a"] and waited > 0.2
    assert ahead.claim("a") < 0.05          # compiled: nothing to wait for
    ahead.close()


def test_a_failed_compilation_is_recorded_not_raised():
    r = _Recorder(fail={"a"})
    ahead = CompileAhead(r.compile, r.is_compiled)
    ahead.want(["a", "b"])
    assert ahead.wait_idle(5)
    assert r.done == ["b"] and ahead.errors[0][0] == "a" and "cannot compile a" in ahead.errors[0][1]
    ahead.want(["a", "c"])                  # a failed once: not tried again
    assert ahead.wait_idle(5)
    assert r.done == ["b", "c"] and len(ahead.errors) == 1
    ahead.close()


def test_close_stops_the_worker():
    r = _Recorder(seconds=0.1)
    ahead = CompileAhead(r.compile, r.is_compiled)
    ahead.want(["a"])
    assert r.started.wait(5)
    ahead.close()
    ahead.want(["b", "c"])
    time.sleep(0.4)
    assert r.done == ["a"]


def _ll_scenario(num_prbs: int, reach: int, extra: dict | None = None):
    from simulator.loader import validate_data

    return validate_data({
        "name": "ahead", "seed": 5, "duration_s": 0.02,
        "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": num_prbs},
        "csi_rs": {"period_ms": 5, "report_delay_ms": 1},
        "phy": {"backend": "link_level", "receiver": "lmmse", "link_level_batch": 2, "compile_ahead": reach},
        "snr": {"model": "fixed", "snr_db": 12},
        "ues": [{"id": 0, "mobility": {"model": "static"}}],
        **(extra or {}),
    })


def _txs(mcs: int, slots: range):
    from simulator.phy.base import Transmission

    rng = np.random.default_rng(mcs)
    return [Transmission(ue=0, slot=s, t_us=s * 500, harq_process=s % 4, tx_round=1, mcs=mcs, tbs_bits=0, snr_db=14.0,
                         h=(rng.standard_normal((1, 4 * 12)) + 1j * rng.standard_normal((1, 4 * 12))).astype(
                             np.complex64) / np.sqrt(2)) for s in slots]


@pytest.mark.slow
def test_a_program_compiled_ahead_gives_the_same_outputs(monkeypatch):
    from simulator.phy.link_level import LinkLevelBackend

    monkeypatch.delenv("AIRTUNE_COMPILE_AHEAD", raising=False)
    on = LinkLevelBackend(_ll_scenario(4, 1), {0: 11})
    for tx in _txs(6, range(2)):
        on.submit(tx)
    on.flush()
    assert on.ahead.wait_idle(120)
    assert {p[0] for p, _ in on.ahead.compiled} == {5, 7} and not on.ahead.errors
    ahead_txs = _txs(7, range(2, 4))
    for tx in ahead_txs:
        on.submit(tx)
    on.flush()
    assert on.programs[(7, 1, 4, 0, 2)][1] == 1
    on.close()

    monkeypatch.setenv("AIRTUNE_COMPILE_AHEAD", "off")
    off = LinkLevelBackend(_ll_scenario(4, 1), {0: 11})
    assert off.ahead is None
    for tx in _txs(6, range(2)):      # the same first transmissions, so the HARQ state matches
        off.submit(tx)
    off.flush()
    own_txs = _txs(7, range(2, 4))
    for tx in own_txs:
        off.submit(tx)
    off.flush()
    assert [(t.ack, t.ber, t.sinr_eff_db) for t in ahead_txs] == [(t.ack, t.ber, t.sinr_eff_db) for t in own_txs]


@pytest.mark.slow
def test_engine_logs_do_not_depend_on_compiling_ahead(monkeypatch, tmp_path):
    from simulator.engine import Simulation

    monkeypatch.delenv("AIRTUNE_COMPILE_AHEAD", raising=False)
    extra = {"duration_s": 0.1, "ues": [{"id": 0, "mobility": {"model": "linear", "speed_kmh": 60,
                                                              "start_m": [0, 0, 1.5], "heading_deg": 0}}]}
    logs = {}
    for reach in (0, 2):
        sim = Simulation(_ll_scenario(12, reach, extra), tmp_path / str(reach))
        sim.run()
        logs[reach] = pd.read_parquet(tmp_path / str(reach) / "slots.parquet")
        assert (sim.phy.ahead is None) == (reach == 0)
    pd.testing.assert_frame_equal(logs[0], logs[2])
    assert logs[2].mcs.nunique() >= 1
