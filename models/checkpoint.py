"""Checkpoints: weights in an ``.npz`` (no pickles) next to a JSON config that records their sha256."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np


class CheckpointError(ValueError):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(json_path: str | Path, config: dict, weights: dict[str, np.ndarray]) -> Path:
    """Write ``<name>.npz`` and ``<name>.json`` (config + ``weights_file`` + ``sha256``)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    npz = json_path.with_suffix(".npz")
    tmp = npz.with_name(npz.stem + ".tmp.npz")
    np.savez(tmp, **{k: np.asarray(v) for k, v in weights.items()})
    os.replace(tmp, npz)
    doc = {"config": config, "weights_file": npz.name, "sha256": _sha256(npz)}
    json_path.write_text(json.dumps(doc, indent=2, sort_keys=True))
    return json_path


def load_checkpoint(json_path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, weights); the weights file must match the recorded sha256."""
    json_path = Path(json_path)
    if not json_path.exists():
        raise CheckpointError(f"{json_path}: no such checkpoint")
    try:
        doc = json.loads(json_path.read_text())
        npz = json_path.parent / doc["weights_file"]
        expected = doc["sha256"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise CheckpointError(f"{json_path}: not an airtune checkpoint ({exc})") from None
    if not npz.exists():
        raise CheckpointError(f"{json_path}: weights file {npz.name} is missing")
    if _sha256(npz) != expected:
        raise CheckpointError(f"{json_path}: sha256 of {npz.name} does not match the checkpoint")
    with np.load(npz, allow_pickle=False) as data:
        weights = {k: data[k] for k in data.files}
    return doc["config"], weights


def save_typed_checkpoint(json_path: str | Path, model_type: str, config: dict, weights: dict[str, np.ndarray],
                          training: dict | None = None) -> Path:
    """``save_checkpoint`` of {"model_type", "config"[, "training"]}, for models whose loader
    checks that a checkpoint is theirs (``load_typed_checkpoint``)."""
    doc = {"model_type": model_type, "config": config}
    if training is not None:
        doc["training"] = training
    return save_checkpoint(json_path, doc, weights)


def load_typed_checkpoint(json_path: str | Path, model_type: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(the model's config, weights) of a ``save_typed_checkpoint`` file; another model's raises."""
    doc, weights = load_checkpoint(json_path)
    if doc.get("model_type") != model_type:
        raise ValueError(f"{json_path}: not a {model_type} checkpoint (model_type {doc.get('model_type')!r})")
    return doc["config"], weights
