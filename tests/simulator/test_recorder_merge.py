"""A closed run's logs are one Parquet file whose bytes do not depend on how the rows were flushed
into parts (parts follow the wall clock), and which is written without holding the whole log."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

import simulator.recorder as recorder

SCHEMA = pa.schema([("slot", pa.int64()), ("x", pa.float64())])


def _parts(tmp, sizes):
    paths, start = [], 0
    for k, n in enumerate(sizes):
        p = tmp / f"part-{k:05d}.parquet"
        pq.write_table(pa.table({"slot": range(start, start + n), "x": [0.5 * i for i in range(start, start + n)]},
                                schema=SCHEMA), p)
        paths.append(p)
        start += n
    return paths


def test_merged_bytes_do_not_depend_on_the_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(recorder, "MERGE_ROW_GROUP", 100)
    outs = []
    for name, sizes in (("a", [0, 250, 31, 19]), ("b", [7, 93, 100, 100])):     # 300 rows either way
        d = tmp_path / name
        d.mkdir()
        recorder._merge_parts(_parts(d, sizes), SCHEMA, d / "merged.parquet")
        outs.append(d / "merged.parquet")
    assert outs[0].read_bytes() == outs[1].read_bytes()
    meta = pq.ParquetFile(outs[0]).metadata
    assert meta.num_rows == 300 and [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [100] * 3
    assert pq.read_table(outs[0]).column("slot").to_pylist() == list(range(300))
