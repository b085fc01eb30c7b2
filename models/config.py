"""Model configs: dataclasses from checkpoint dicts with unknown keys refused, and the error a
config's cross-field rule raises to name the field it is about."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

# where the bundled checkpoints and datasets live (models/checkpoints, data/): the airtune source tree
INSTALL_ROOT = Path(__file__).resolve().parent.parent


def _resolve(value: str, info: ValidationInfo) -> str:
    """A relative file path in a scenario, resolved against, in order: the scenario file's folder
    (validation context ``base_dir``), the working directory, the airtune installation (the bundled
    checkpoints and pools, so a bundled scenario validates from anywhere). The first that exists wins;
    if none does, the path stays as given and the file checks say it is missing."""
    p = Path(value)
    if p.is_absolute() or not value:
        return value
    base = (info.context or {}).get("base_dir")
    for candidate in ([Path(base) / p] if base is not None else []) + [p, INSTALL_ROOT / p]:
        if candidate.exists():
            return str(candidate)
    return value


ScenarioPath = Annotated[str, AfterValidator(_resolve)]    # a checkpoint, track or pool a scenario names


def config_from_dict(cls, d: dict, kind: str):
    """``cls(**d)`` for a dataclass ``cls``; a key it does not have raises ValueError naming the
    valid ones (``kind`` names the model type in the message)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown {kind} config keys {unknown}; valid: {sorted(known)}")
    return cls(**d)


class FieldError(ValueError):
    """A cross-field validation error that knows the dotted path of the field it is about
    (relative to the model that raises it; the scenario loader prefixes the model's own path)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
