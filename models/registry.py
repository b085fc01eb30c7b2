"""A decorator registry mapping a scenario's ``type:`` to a model class."""
from __future__ import annotations

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


def get_model(name: str) -> type:
    """The class registered under ``name``; an unknown name lists the valid ones."""
    _import_builtin()
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model type {name!r}; valid: {', '.join(sorted(_MODELS)) or '(none)'}") \
            from None


def registered() -> list[str]:
    _import_builtin()
    return sorted(_MODELS)


def _import_builtin() -> None:
    import models.ff_bler.model  # noqa: F401  (registers "ff_bler")
    import models.mlp_bler.model  # noqa: F401  (registers "mlp_bler")
    import models.csi_codec.model  # noqa: F401  (registers "conv_csi")
