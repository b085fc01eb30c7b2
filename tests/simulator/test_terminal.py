"""A quiet, live terminal (issue 16, item 4): no library start-up lines unless --verbose, a status
line during setup, a progress bar that moves."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from simulator.status import StatusLine

REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "scenarios" / "quickstart.yaml")
# what TensorFlow 2.21 prints on import and device scan whatever TF_CPP_MIN_LOG_LEVEL says
STARTUP = ("absl::InitializeLog", "oneDNN custom operations", "cudart_stub", "cpu_feature_guard", "cuInit")


def _run(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}
    env.pop("AIRTUNE_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "simulator.cli", "run", QUICK, "--out", str(tmp_path / "run"),
                           "--set", "duration_s=0.05", "--overwrite", *extra],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


def test_no_startup_lines_unless_verbose(tmp_path):
    quiet = _run(tmp_path, "--no-progress")
    assert quiet.returncode == 0, quiet.stderr
    assert not [m for m in STARTUP if m in quiet.stderr], quiet.stderr
    assert quiet.stderr.splitlines()[0].startswith("airtune: running quickstart")
    loud = _run(tmp_path, "--no-progress", "--verbose")
    assert loud.returncode == 0 and "absl::InitializeLog" in loud.stderr, loud.stderr


def test_setup_status_lines_when_progress_is_on(tmp_path):
    res = _run(tmp_path)                           # stderr is a pipe: one line per setup step
    assert res.returncode == 0, res.stderr
    assert "airtune: building the BLER tables" in res.stderr
    assert "airtune: building the channels of 1 UE(s) (tdl, 0.05 s)" in res.stderr
    assert "airtune: loading the models of every UE" in res.stderr


def test_status_line_rewrites_in_place_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    say = StatusLine(True, out)
    say("building the channels")
    say("building the PHY")
    say.done()
    text = out.getvalue()
    assert text.count("\r\033[K") == 3 and "\n" not in text and "airtune: building the PHY (0 s)" in text
    off = io.StringIO()
    StatusLine(False, off)("anything")
    assert off.getvalue() == ""
