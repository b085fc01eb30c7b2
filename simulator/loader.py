"""Load a YAML config (scenario, sweep, data config), apply ``--set`` overrides, and turn every
failure into field-path errors.

:func:`load_yaml_config` validates a YAML file against any pydantic model and raises
:class:`ConfigError` whose lines read ``path.to.field: message (line N)``; the CLI prints them
and exits with code 2. No traceback reaches the user.
"""
from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from models.config import FieldError
from simulator.schema import Scenario

M = TypeVar("M", bound=BaseModel)


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-3`` and ``2E5`` are numbers (YAML 1.1, which PyYAML
    follows, wants a dot, so they would be strings and a number field would refuse them)."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


class ConfigError(ValueError):
    """Invalid input file. ``errors`` holds one ``field: message`` line per problem; ``what``
    names the kind of file in the message's first line (``invalid scenario``)."""

    def __init__(self, errors: list[str], source: str = "", what: str = "scenario"):
        self.errors = errors
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + f"invalid {what}\n" + "\n".join(f"  {e}" for e in errors))


def _yaml_lines(node: yaml.Node | None, loc: tuple) -> int | None:
    """1-based YAML line of the node at ``loc`` (the deepest existing ancestor if it is missing)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(key):
                    nxt = (k, v)
                    break
            if nxt is None:
                return line
            line = nxt[0].start_mark.line + 1
            node = nxt[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _union_tags(ann) -> dict[str, type[BaseModel]]:
    """Tag -> model of a discriminated union of pydantic models (``model: Literal['fixed']``...), else {}."""
    tags = {}
    for arg in typing.get_args(ann):
        field = getattr(arg, "model_fields", {}).get("model")
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            tags.update({tag: arg for tag in typing.get_args(field.annotation)})
    return tags


def _field_path(model_cls: type[BaseModel], loc: tuple) -> tuple:
    """Pydantic's error location without the union tags it inserts (``snr.fixed.snr_db`` -> ``snr.snr_db``)."""
    out, ann = [], model_cls
    for part in loc:
        while typing.get_origin(ann) is typing.Annotated:
            ann = typing.get_args(ann)[0]
        tags = _union_tags(ann)
        if isinstance(part, str) and part in tags:
            ann = tags[part]
            continue
        out.append(part)
        models = [a for a in (ann, *typing.get_args(ann)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if models and isinstance(part, str) and part in models[0].model_fields:
            ann = models[0].model_fields[part].annotation
        elif typing.get_origin(ann) in (list, tuple, dict):
            ann = typing.get_args(ann)[-1] if typing.get_args(ann) else None
        else:
            ann = None
    return tuple(out)


def _format_validation_error(err: ValidationError, model_cls: type[BaseModel], root: yaml.Node | None) -> list[str]:
    lines = []
    for e in err.errors(include_url=False):
        loc = _field_path(model_cls, e["loc"])
        exc = (e.get("ctx") or {}).get("error")
        if isinstance(exc, FieldError):
            loc = loc + tuple(exc.path.split("."))
            msg = exc.message
        elif e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "field required"
        else:
            msg = e["msg"].removeprefix("Value error, ")
            if "input" in e and e["type"] not in ("model_type",) and not isinstance(e["input"], (dict, list)):
                msg += f" (got {e['input']!r})"
        lines.append(_error_line(loc, msg, root))
    return lines


def _error_line(loc: tuple, msg: str, root: yaml.Node | None) -> str:
    """``path.to.field: message (line N)``; the line when ``root`` (the composed YAML) has the field."""
    path = ".".join(str(p) for p in loc) or "<root>"
    yline = _yaml_lines(root, tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in loc))
    return f"{path}: {msg}" + (f" (line {yline})" if yline else "")


def field_errors(errors: list[FieldError], source: str | Path = "", what: str = "scenario") -> ConfigError:
    """A ConfigError of ``path: message (line N)`` lines, one per FieldError (a check outside the
    schema); the lines are looked up in ``source`` when it is a readable YAML file."""
    root = None
    if source and Path(source).is_file():
        try:
            root = yaml.compose(Path(source).read_text(), Loader=YamlLoader)
        except yaml.YAMLError:
            pass
    return ConfigError([_error_line(tuple(e.path.split(".")), e.message, root) for e in errors], str(source), what)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'a.b.c=value'`` -> (['a', 'b', 'c'], parsed YAML value)."""
    if "=" not in text:
        raise ConfigError([f"--set {text}: expected key.path=value"])
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError([f"--set {text}: empty key in path"])
    try:
        value = yaml.load(raw, Loader=YamlLoader) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError([f"{key}: --set value is not valid YAML ({exc.problem})"]) from None
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``--set`` overrides in order. Missing mappings are created (validation then rejects
    unknown keys with their full path); list elements are addressed by index (``ues.0.id``)."""
    for text in overrides:
        path, value = parse_override(text)
        set_path(data, path, value)
    return data


def set_path(data: dict, path: list[str], value: Any) -> None:
    """Set ``data[path[0]][path[1]]... = value`` (a ``--set`` or a sweep parameter), in place."""
    node: Any = data
    for i, part in enumerate(path[:-1]):
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError([f"{where}: no list element {part!r} (list has {len(node)})"])
            node = node[int(part)]
        elif isinstance(node, dict):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError([f"{where}: cannot set a field inside a {type(node).__name__}"])
    last = path[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError([f"{'.'.join(path)}: no list element {last!r}"])
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError([f"{'.'.join(path)}: cannot set a field inside a {type(node).__name__}"])


def validate_config(data: Any, model_cls: type[M], root: yaml.Node | None = None, source: str = "",
                    what: str = "scenario", base_dir: str | Path | None = None) -> M:
    """``model_cls`` from parsed YAML ``data``; raises ConfigError with field paths (and the lines of
    ``root``, the composed YAML, when given). Relative file paths (``models.config.ScenarioPath``)
    resolve against ``base_dir`` (the YAML file's folder) first, then the working directory."""
    if not isinstance(data, dict):
        raise ConfigError([f"<root>: expected a mapping of {what} fields, got {type(data).__name__}"], source, what)
    wrong = _loose_numbers(data, model_cls, ())
    if wrong:
        raise ConfigError([_error_line(loc, msg, root) for loc, msg in wrong], source, what)
    try:
        return model_cls.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, model_cls, root), source, what) from None


def _loose_numbers(data: Any, model_cls: type[BaseModel], loc: tuple) -> list[tuple[tuple, str]]:
    """(loc, message) of every number field given a bool or a string: pydantic's lax mode would take
    ``seed: true`` as 1 and ``duration_s: "1.0"`` as 1.0, which `airtune schema` (JSON Schema) refuses.
    NaN and infinity are refused by the models themselves (``allow_inf_nan=False``)."""
    out = []
    if not isinstance(data, dict):
        return out
    for name, field in model_cls.model_fields.items():
        key = field.alias or name
        if key in data:
            out += _check_value(data[key], field.annotation, (*loc, key))
    return out


def _check_value(value: Any, ann, loc: tuple) -> list[tuple[tuple, str]]:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return _check_value(value, args[0], loc)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if value is None:
            return []
        numbers = [a for a in options if a in (int, float)]
        if numbers and len(numbers) == len(options):
            return _check_value(value, numbers[0], loc)
        tags = _union_tags(ann)
        if tags and isinstance(value, dict):
            for model in tags.values():
                out = _loose_numbers(value, model, loc) if _tag_matches(value, model) else None
                if out is not None:
                    return out
        models = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1 and isinstance(value, dict):
            return _loose_numbers(value, models[0], loc)
        return []
    if ann in (int, float):
        if isinstance(value, (bool, str)):
            kind = "an integer" if ann is int else "a number"
            return [(loc, f"expected {kind}, got {json.dumps(value)}")]
        return []
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return _loose_numbers(value, ann, loc)
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        out = []
        for i, item in enumerate(value):
            item_ann = args[0] if origin is list or (len(args) == 2 and args[1] is Ellipsis) else (
                args[i] if i < len(args) else None)
            if item_ann is not None:
                out += _check_value(item, item_ann, (*loc, i))
        return out
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return [e for k, v in value.items() for e in _check_value(v, args[1], (*loc, k))]
    return []


def _tag_matches(value: dict, model: type[BaseModel]) -> bool:
    """The discriminated union member whose Literal tag field the value carries."""
    for name, field in model.model_fields.items():
        if typing.get_origin(field.annotation) is typing.Literal and value.get(name) in typing.get_args(field.annotation):
            return True
    return False


def validate_data(data: Any, root: yaml.Node | None = None, source: str = "",
                  base_dir: str | Path | None = None) -> Scenario:
    """A scenario from a parsed mapping (a sweep point, a data-config point, a test's dict); its file
    paths resolve against ``base_dir`` first (the folder of the YAML it came from)."""
    return validate_config(data, Scenario, root, source, base_dir=base_dir)


MAX_YAML_BYTES = 10 * 2 ** 20          # a scenario, sweep or data config is a few kB
MAX_YAML_NODES = 200_000               # after aliases are expanded (a billion-laughs file is refused)


def read_yaml(path: str | Path, what: str = "scenario") -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file; a missing, unreadable, oversized, non-UTF-8 or malformed file, duplicate keys
    and a document of more than ``MAX_YAML_NODES`` nodes (aliases expanded) become ConfigError, before
    anything is expanded."""
    p = Path(path)
    if not p.exists():
        raise ConfigError([f"{p}: no such file"], what=what)
    if p.is_dir():
        raise ConfigError([f"{p}: is a directory, expected a {what} YAML file"], what=what)
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)                 # at most that much, even from /dev/zero
    except OSError as exc:
        raise ConfigError([f"{p}: cannot be read ({exc.strerror or exc})"], what=what) from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError([f"<file>: larger than {MAX_YAML_BYTES // 2 ** 20} MB (a {what} is a few kB)"], str(p), what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError([f"<file>: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line})"], str(p), what) from None
    try:
        root = yaml.compose(text, Loader=YamlLoader)
        problems = _structure_problems(root)
        if problems:
            raise ConfigError(problems, str(p), what)
        data = yaml.load(text, Loader=YamlLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError([f"<yaml>: syntax error: {getattr(exc, 'problem', exc)}{where}"], str(p), what) from None
    except RecursionError:
        raise ConfigError(["<yaml>: nested too deeply"], str(p), what) from None
    return data, root


def _structure_problems(root: yaml.Node | None) -> list[str]:
    """Duplicate mapping keys (``path.key: duplicate key (lines A and B)``) and an expanded size above
    ``MAX_YAML_NODES`` (aliases count as often as they are used; each node is visited once)."""
    problems: list[str] = []
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, path: str) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1                                     # a cycle counts once
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else None
                line = k.start_mark.line + 1
                if key is not None and key != "<<":
                    if key in seen:
                        problems.append(f"{path}{key}: duplicate key (lines {seen[key]} and {line})")
                    seen.setdefault(key, line)
                total += size(k, path) + size(v, f"{path}{key}.")
                if total > MAX_YAML_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                total += size(v, f"{path}{i}.")
                if total > MAX_YAML_NODES:
                    break
        sizes[id(node)] = total
        return total

    if root is not None and size(root, "") > MAX_YAML_NODES:
        problems.append(f"<yaml>: more than {MAX_YAML_NODES:,} nodes once its aliases are expanded")
    return problems


def load_yaml_config(path: str | Path, model_cls: type[M], overrides: list[str] | tuple = (),
                     what: str = "config") -> M:
    """Read a YAML file, apply ``--set`` overrides, validate it as ``model_cls``. Raises ConfigError
    with field paths and YAML lines; ``what`` names the file kind in its messages."""
    data, root = read_yaml(path, what)
    if isinstance(data, dict):
        data = apply_overrides(data, list(overrides))
    return validate_config(data, model_cls, root, str(path), what, base_dir=Path(path).parent)


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """A scenario YAML, overridden and validated. Raises ConfigError with field paths (and YAML lines)."""
    return load_yaml_config(path, Scenario, overrides or (), "scenario")


def scenario_to_dict(scenario: Scenario) -> dict:
    """The fully resolved scenario (defaults filled in), JSON-safe."""
    return json.loads(scenario.model_dump_json())
