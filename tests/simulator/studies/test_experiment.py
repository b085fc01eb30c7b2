"""``airtune experiment``: input errors and the tables-only path (the sweeps themselves are
tested in test_sweep.py; the tables in tests/analysis/test_lighttune_tables.py)."""
from __future__ import annotations

from simulator.cli import main
from tests.conftest import REPO


def test_unknown_filter_and_bad_workers_exit_2(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["experiment", "lighttune", "--only", "tdl_x999"]) == 2
    assert "--only: no sweep file" in capsys.readouterr().err
    assert main(["experiment", "lighttune", "--workers", "0"]) == 2
    assert "--workers: must be >= 1" in capsys.readouterr().err


def test_tables_only_writes_the_document_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    table = tmp_path / "R.md"
    assert main(["experiment", "lighttune", "--tables-only", "--out", str(tmp_path / "none"),
                 "--table", str(table)]) == 0
    text = table.read_text()
    assert text.startswith("# LightTune mismatch study") and "airtune experiment lighttune" in text
    assert not (tmp_path / "none").exists()
