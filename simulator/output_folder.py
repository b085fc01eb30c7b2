"""Claiming an output folder (a run's or a sweep's): its path checked before anything is written,
then held by one writer at a time.

The lock is a ``filelock`` lock on ``<folder>/.airtune.lock``: the kernel releases it when the
holder exits, killed or not, so a stale lock never blocks a folder. Next to it,
``.airtune.lock.json`` names the holder (pid, host, command, start time) for the refusal message
a second writer gets.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

LOCK_FILE = ".airtune.lock"
HOLDER_FILE = ".airtune.lock.json"


class FolderError(Exception):
    """An output folder that cannot be used: the message names the field and the path."""


def checked_path(out_dir: str | Path, field: str = "output.dir") -> Path:
    """The folder, created if missing; FolderError if it is empty, not a folder, or cannot be written."""
    if not str(out_dir).strip():
        raise FolderError(f"{field}: empty; give a folder (e.g. results/my_run)")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FolderError(f"{field}: {out} exists and is not a folder")
    for parent in out.parents:           # a file above the folder: say which
        if parent.exists():
            if not parent.is_dir():
                raise FolderError(f"{field}: {out}: {parent} is a file, not a folder")
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FolderError(f"{field}: cannot create {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise FolderError(f"{field}: {out} is not writable")
    return out


def holder(out_dir: Path) -> dict | None:
    """Who holds (or last held) the folder's lock, from its holder file; None if unreadable."""
    try:
        doc = json.loads((Path(out_dir) / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _describe(doc: dict | None) -> str:
    if doc is None:
        return "another process"
    return (f"pid {doc.get('pid')} on {doc.get('host')} (started {doc.get('started_at')}: "
            f"{doc.get('command')})")


@contextmanager
def claim(out_dir: str | Path, field: str = "output.dir") -> Iterator[Path]:
    """Check the path, then hold the folder's lock for the block; FolderError if another process holds it."""
    out = checked_path(out_dir, field)
    lock = FileLock(str(out / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise FolderError(f"{field}: {out} is in use by {_describe(holder(out))}; wait for it to finish "
                          f"or choose another --out") from None
    except OSError as exc:
        raise FolderError(f"{field}: cannot lock {out}: {exc.strerror or exc}") from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv),
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            (out / HOLDER_FILE).write_text(json.dumps(info))
        except OSError as exc:
            raise FolderError(f"{field}: cannot write in {out}: {exc.strerror or exc}") from None
        yield out
    finally:
        try:
            (out / HOLDER_FILE).unlink(missing_ok=True)
        except OSError:
            pass
        lock.release()
