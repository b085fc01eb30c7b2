"""Model configs (dataclasses) from checkpoint or scenario dicts, with unknown keys refused."""
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
