"""A study's committed per-point record (analysis.point_record): fresh rows replace the record's of the same
point, stale digests are dropped, and writing is deterministic and lossless."""
from __future__ import annotations

import pandas as pd

from analysis.point_record import merge_record, read_record, write_record


def _rows(*items):
    return pd.DataFrame([{"sweep": s, "point": p, "scenario_sha256": d, "x": x} for s, p, d, x in items])


def test_merge_fresh_wins_and_stale_dropped(tmp_path):
    record = _rows(("a", "p1", "d1", 1.0), ("a", "p2", "d2", 2.0), ("b", "p1", "d3", 3.0))
    fresh = _rows(("a", "p2", "d2new", 20.0))
    merged = merge_record(record, fresh)
    assert list(zip(merged.sweep, merged.point, merged.x)) == [("a", "p1", 1.0), ("a", "p2", 20.0), ("b", "p1", 3.0)]
    current = {("a", "p1"): "d1", ("a", "p2"): "d2new", ("b", "p1"): "changed"}
    assert list(merge_record(record, fresh, current).x) == [1.0, 20.0]
    assert read_record(tmp_path / "missing.csv").empty


def test_write_is_lossless_and_deterministic(tmp_path):
    df = _rows(("b", "p1", "d3", 0.1 + 0.2), ("a", "p1", "0123", 1 / 3))
    write_record(df, tmp_path / "r.csv")
    back = read_record(tmp_path / "r.csv")
    assert list(back.x) == [1 / 3, 0.1 + 0.2] and list(back.scenario_sha256) == ["0123", "d3"]   # exact floats, str digests
    write_record(back.iloc[::-1], tmp_path / "s.csv")
    assert (tmp_path / "r.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()


def test_the_digest_ignores_where_the_logs_go_and_nothing_else():
    from simulator.log_schema import scenario_digest

    a = {"seed": 1, "duration_s": 10.0, "output": {"dir": "/tmp/a/seed=1", "flush_rows": 20000}}
    b = {**a, "output": {"dir": "/elsewhere/seed=1", "flush_rows": 5}}
    assert scenario_digest(a) == scenario_digest(b)                    # another results folder: same point
    assert scenario_digest(a) != scenario_digest({**a, "seed": 2})
    assert scenario_digest(a) != scenario_digest({**a, "duration_s": 10.5})


def test_the_digest_ignores_compiling_ahead_and_is_that_of_a_scenario_without_the_field():
    from simulator.log_schema import result_fields, scenario_digest

    old = {"seed": 1, "phy": {"backend": "link_level", "receiver": "lmmse"}}     # before the field existed
    new = {"seed": 1, "phy": {"backend": "link_level", "receiver": "lmmse", "compile_ahead": 4}}
    assert scenario_digest(old) == scenario_digest(new) == scenario_digest({**new, "phy": {**new["phy"],
                                                                                       "compile_ahead": 0}})
    assert scenario_digest(new) != scenario_digest({**new, "phy": {**new["phy"], "receiver": "neural"}})
    assert result_fields(new) == old and new["phy"]["compile_ahead"] == 4          # a copy: the input is kept
