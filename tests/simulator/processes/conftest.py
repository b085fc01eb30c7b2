"""SimPy-style fixtures for exact-trace tests of processes: ``env`` and ``log``."""
from __future__ import annotations

import pytest
import simpy


class Log:
    """Stands in for the Recorder: the rows appended to each table, in order."""

    def __init__(self):
        self.rows: dict[str, list[dict]] = {}

    def append(self, table: str, row: dict) -> None:
        self.rows.setdefault(table, []).append(row)

    def __getitem__(self, table: str) -> list[dict]:
        return self.rows.get(table, [])


@pytest.fixture
def env():
    return simpy.Environment()


@pytest.fixture
def log():
    return Log()
