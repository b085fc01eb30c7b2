"""Parquet logs written as the run goes, and the run manifest.

While running, each log is a folder ``<name>.parquet/`` of part files, each written to a
temporary name and renamed, so a crashed or killed run leaves only complete parts: pandas
and pyarrow read the folder as one table. ``close()`` merges the parts into a single
``<name>.parquet`` file and marks the manifest ``complete``. Both layouts are read with
``pandas.read_parquet(path)``.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from simulator.log_schema import TABLES


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


MERGE_ROW_GROUP = 131_072      # rows per row group of a merged log: fixed, so the bytes do not depend on the parts


def _merge_parts(parts: list[Path], schema: pa.Schema, out: Path) -> None:
    """Write the parts as one Parquet file, reading them one at a time (a long run's log is never held
    whole) and cutting row groups at fixed row counts, not at the parts' boundaries (which follow the
    wall clock), so two runs of one scenario write the same bytes."""
    with pq.ParquetWriter(out, schema) as writer:
        buffer = schema.empty_table()
        for part in parts:
            buffer = pa.concat_tables([buffer, pq.read_table(part, schema=schema)])
            while buffer.num_rows >= MERGE_ROW_GROUP:
                writer.write_table(buffer.slice(0, MERGE_ROW_GROUP), row_group_size=MERGE_ROW_GROUP)
                buffer = buffer.slice(MERGE_ROW_GROUP)
        if buffer.num_rows or not parts:
            writer.write_table(buffer, row_group_size=MERGE_ROW_GROUP)


class Recorder:
    def __init__(self, out_dir: Path, manifest: dict, flush_rows: int = 20000, flush_s: float = 5.0):
        self.out_dir = Path(out_dir)
        self.manifest = manifest
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self._cols = {name: {f.name: [] for f in schema} for name, schema in TABLES.items()}
        self._rows = dict.fromkeys(TABLES, 0)
        self._parts = dict.fromkeys(TABLES, 0)
        self._last_flush = time.monotonic()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name in TABLES:
            p = self.out_dir / f"{name}.parquet"
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
            p.mkdir()
            # an empty first part keeps the folder readable before any row is flushed
            pq.write_table(TABLES[name].empty_table(), p / "part-00000.parquet")
            self._parts[name] = 1
        self.manifest["status"] = "running"
        write_json_atomic(self.out_dir / "manifest.json", self.manifest)

    def append(self, table: str, row: dict) -> None:
        """One row; a column the row does not name is null (e.g. CSI-only columns of a LightTune update)."""
        cols = self._cols[table]
        for k, v in row.items():
            cols[k].append(v)
        if len(row) != len(cols):
            for k, col in cols.items():
                if k not in row:
                    col.append(None)
        self._rows[table] += 1
        if self._rows[table] >= self.flush_rows:
            self.flush(table)

    def maybe_flush(self) -> None:
        """Flush everything if flush_s of wall time passed (called from a cheap periodic point)."""
        if time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self, table: str | None = None) -> None:
        for name in ([table] if table else TABLES):
            if self._rows[name] == 0:
                continue
            schema = TABLES[name]
            cols = self._cols[name]
            n = self._rows[name]        # whole rows: a row an interrupt (SIGTERM) cut short in append is dropped
            arrays = [pa.array(cols[f.name][:n], type=f.type) if cols[f.name]
                      else pa.nulls(n, type=f.type) for f in schema]
            tbl = pa.Table.from_arrays(arrays, schema=schema)
            part = self.out_dir / f"{name}.parquet" / f"part-{self._parts[name]:05d}.parquet"
            tmp = part.with_name("." + part.name + ".tmp")
            try:
                pq.write_table(tbl, tmp)
                os.replace(tmp, part)
            except BaseException:
                tmp.unlink(missing_ok=True)      # only complete parts stay (disk full, interrupt)
                raise
            self._parts[name] += 1
            self._cols[name] = {f.name: [] for f in schema}
            self._rows[name] = 0
        self._last_flush = time.monotonic()

    def close(self, status: str = "complete", **extra) -> None:
        """Flush, merge parts into single files (complete runs only), write the final manifest.

        A run that ended otherwise (failed, interrupted) keeps its parts; if its last rows cannot be
        written either (disk full), the manifest still records the status, with both errors."""
        if status == "complete":
            self.flush()
        else:
            try:
                self.flush()
            except OSError as exc:
                extra["error"] = f"{extra.get('error', '')}; last rows not written: {type(exc).__name__}: {exc}"
        if status == "complete":
            for name, schema in TABLES.items():
                folder = self.out_dir / f"{name}.parquet"
                parts = sorted(folder.glob("part-*.parquet"))
                tmp = self.out_dir / f".{name}.parquet.tmp"
                try:
                    _merge_parts(parts, schema, tmp)
                except BaseException:
                    tmp.unlink(missing_ok=True)      # the parts stay: the run can still be read
                    raise
                shutil.rmtree(folder)
                os.replace(tmp, self.out_dir / f"{name}.parquet")
        self.manifest.update(extra)
        self.manifest["status"] = status
        write_json_atomic(self.out_dir / "manifest.json", self.manifest)
