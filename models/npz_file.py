"""npz files (no pickles) written atomically and checked against a recorded sha256: checkpoint
weights and dataset shards."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> str:
    """Write ``arrays`` to ``path`` through a temporary file renamed into place (a reader never
    sees half a file); returns the file's sha256."""
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)
    return file_sha256(path)
