"""Model configs: dataclasses from checkpoint dicts with unknown keys refused, and the error a
config's cross-field rule raises to name the field it is about."""
from __future__ import annotations

from dataclasses import fields


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
