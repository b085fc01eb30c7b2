"""The recorder keeps whole rows: a row an interrupt cut short while it was being appended is dropped at
the flush, so the partial log of a killed run stays readable."""
from __future__ import annotations

import pandas as pd

from simulator.log_schema import TABLES
from simulator.recorder import Recorder


def test_a_row_cut_short_by_an_interrupt_is_dropped_at_the_flush(tmp_path):
    rec = Recorder(tmp_path / "run", {"kind": "test"})
    full = {f.name: None for f in TABLES["updates"]}
    full.update(t_us=1, ue=0, model="m", trigger="t")
    rec.append("updates", full)
    cols = rec._cols["updates"]
    cols["t_us"].append(2)                # what a SIGTERM between two columns of append leaves
    cols["ue"].append(0)
    rec.close(status="interrupted")
    parts = sorted((tmp_path / "run" / "updates.parquet").glob("part-*.parquet"))
    df = pd.concat([pd.read_parquet(p) for p in parts])
    assert df["t_us"].tolist() == [1]
