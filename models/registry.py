"""A decorator registry mapping a scenario's ``type:`` to a model class."""
from __future__ import annotations

import importlib

_MODELS: dict[str, type] = {}


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return self.args[0]


def register_model(name: str):
    """Class decorator: ``@register_model("ff_bler")``. Duplicate names raise."""
    def deco(cls):
        if name in _MODELS:
            raise ValueError(f"model type {name!r} is already registered by {_MODELS[name].__qualname__}")
        _MODELS[name] = cls
        cls.model_type = name
        return cls
    return deco


# Built-in model types and the module that registers each. Modules are imported when their type
# is first asked for, so validating a scenario does not import TensorFlow for models it does not
# use (importing the CSI codec costs ~6 s on 2 cores). Add a built-in model here, one line.
_BUILTIN = {
    "ff_bler": "models.ff_bler.model",
    "mlp_bler": "models.mlp_bler.model",
    "conv_csi": "models.csi_codec.model",
    "deeprx": "models.deeprx.model",
}


def get_model(name: str) -> type:
    """The class registered under ``name``; an unknown name lists the valid ones."""
    if name not in _MODELS and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model type {name!r}; valid: {', '.join(registered()) or '(none)'}") \
            from None


def registered() -> list[str]:
    """Every model type: the built-in ones (not imported by this call) and any registered since."""
    return sorted(set(_MODELS) | set(_BUILTIN))
