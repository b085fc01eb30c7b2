"""Checkpoints: weights in an ``.npz`` (no pickles) next to a JSON config that records their sha256."""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.npz_file import file_sha256, save_npz


class CheckpointError(ValueError):
    pass


def save_checkpoint(json_path: str | Path, config: dict, weights: dict[str, np.ndarray]) -> Path:
    """Write ``<name>.npz`` and ``<name>.json`` (config + ``weights_file`` + ``sha256``)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    npz = json_path.with_suffix(".npz")
    doc = {"config": config, "weights_file": npz.name, "sha256": save_npz(npz, weights)}
    json_path.write_text(json.dumps(doc, indent=2, sort_keys=True))
    return json_path


def _read_json(json_path: Path) -> dict:
    """The checkpoint JSON {"config", "weights_file", "sha256"}; CheckpointError if it is not one."""
    if not json_path.exists():
        raise CheckpointError(f"{json_path}: no such checkpoint")
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{json_path}: not an airtune checkpoint ({exc})") from None
    missing = sorted({"config", "weights_file", "sha256"} - set(doc)) if isinstance(doc, dict) else ["(an object)"]
    if missing:
        raise CheckpointError(f"{json_path}: not an airtune checkpoint (no {', '.join(missing)})")
    return doc


def load_checkpoint(json_path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, weights); the weights file must match the recorded sha256."""
    json_path = Path(json_path)
    doc = _read_json(json_path)
    npz = json_path.parent / doc["weights_file"]
    if not npz.exists():
        raise CheckpointError(f"{json_path}: weights file {npz.name} is missing")
    if file_sha256(npz) != doc["sha256"]:
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
    _check_type(json_path, doc, model_type)
    return doc["config"], weights


@dataclass(frozen=True)
class CheckpointConfig:
    """What a typed checkpoint's JSON records, without its weights."""
    config: dict                 # the model's config
    training: dict | None        # how it was trained (None: not recorded)
    weights_sha256: str          # sha256 of the weights file, as recorded


def read_checkpoint_config(json_path: str | Path, model_type: str) -> CheckpointConfig:
    """The config and training record of a ``save_typed_checkpoint`` file, without reading its
    weights (so no sha256 check and no TensorFlow: for validation and for tools that need only
    the record). A missing file, one that is not a checkpoint or another model's raises
    CheckpointError."""
    json_path = Path(json_path)
    doc = _read_json(json_path)
    _check_type(json_path, doc["config"], model_type)
    return CheckpointConfig(doc["config"]["config"], doc["config"].get("training"), doc["sha256"])


def _check_type(json_path, doc, model_type: str) -> None:
    """``doc`` (a checkpoint's "config" entry) is a typed checkpoint of ``model_type``, with a config."""
    found = doc.get("model_type") if isinstance(doc, dict) else None
    if found != model_type or not isinstance(doc.get("config"), dict):
        raise CheckpointError(f"{json_path}: not a {model_type} checkpoint (model_type {found!r})")


# weights files found whole, by (path, size, mtime, sha256): a sweep of 10,000 points validates one
# checkpoint once, not 10,000 times (hashing and reading it took ~4 ms a time)
_WHOLE: dict[tuple, dict[str, tuple[int, ...]]] = {}


def _weight_shapes(json_path: Path, npz: Path, sha256: str) -> dict[str, tuple[int, ...]]:
    """Array name -> shape of a weights file that is present, matches ``sha256`` and holds finite numbers."""
    if not npz.is_file():
        raise CheckpointError(f"{json_path}: weights file {npz.name} is missing")
    st = npz.stat()
    key = (str(npz.resolve()), st.st_size, st.st_mtime_ns, sha256)
    if key in _WHOLE:
        return _WHOLE[key]
    if file_sha256(npz) != sha256:
        raise CheckpointError(f"{json_path}: sha256 of {npz.name} does not match the checkpoint (a changed or "
                              f"truncated file)")
    try:
        with np.load(npz, allow_pickle=False) as data:
            shapes = {k: data[k].shape for k in data.files}
            bad = [k for k in data.files if not np.issubdtype(data[k].dtype, np.number) or not np.isfinite(data[k]).all()]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{json_path}: weights file {npz.name} is not readable ({exc})") from None
    if bad:
        raise CheckpointError(f"{json_path}: weights {', '.join(sorted(bad))} are not finite numbers")
    _WHOLE[key] = shapes
    return shapes


def verify_checkpoint(json_path: str | Path, expected: dict[str, tuple[int, ...]] | None = None,
                      finite_config: tuple[str, ...] = (), what: str = "checkpoint") -> dict:
    """Check a checkpoint whole without building its model (for validation): the JSON's structure, the
    weights file present and matching its sha256, every array finite, and with ``expected`` (array name ->
    shape) exactly those arrays with those shapes; the config entries ``finite_config`` present and
    finite numbers. Returns the JSON's "config"; raises CheckpointError naming the first problem."""
    json_path = Path(json_path)
    doc = _read_json(json_path)
    if not isinstance(doc["config"], dict) or not isinstance(doc["weights_file"], str):
        raise CheckpointError(f"{json_path}: not an airtune checkpoint (config or weights_file of the wrong type)")
    shapes = _weight_shapes(json_path, json_path.parent / doc["weights_file"], doc["sha256"])
    if expected is not None:
        missing = sorted(set(expected) - set(shapes))
        extra = sorted(set(shapes) - set(expected))
        wrong = [f"{k} {list(shapes[k])} (expected {list(v)})" for k, v in expected.items()
                 if k in shapes and tuple(shapes[k]) != tuple(v)]
        if missing or extra or wrong:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unexpected {', '.join(extra)}"] if extra else []) + wrong
            raise CheckpointError(f"{json_path}: not a {what} for its config: " + "; ".join(parts))
    cfg = doc["config"]
    for key in finite_config:
        values = np.asarray(cfg.get(key, []), dtype=object).ravel()
        if key not in cfg or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
                                     for v in values):
            raise CheckpointError(f"{json_path}: config {key} is missing or not finite numbers")
    return cfg


def dense_layer_shapes(sizes, transposed: bool) -> dict[str, tuple[int, int] | tuple[int]]:
    """W_l and b_l of dense layers of ``sizes`` (input first): W_l [sizes[l+1], sizes[l]], or
    [sizes[l], sizes[l+1]] when ``transposed``; b_l [sizes[l+1]]."""
    sizes = [int(v) for v in sizes]
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return {**{f"W{l}": ((i, o) if transposed else (o, i)) for l, (i, o) in enumerate(pairs)},
            **{f"b{l}": (o,) for l, (_, o) in enumerate(pairs)}}
