"""Load a scenario YAML, apply ``--set`` overrides, and turn every failure into field-path errors.

``load_scenario`` raises :class:`ScenarioError` whose lines read ``path.to.field: message
(line N)``; the CLI prints them and exits with code 2. No traceback reaches the user.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from simulator.schema import FieldError, Scenario


class ScenarioError(Exception):
    """Invalid scenario input. ``errors`` holds one ``field: message`` line per problem."""

    def __init__(self, errors: list[str], source: str = ""):
        self.errors = errors
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "invalid scenario\n" + "\n".join(f"  {e}" for e in errors))


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


def _format_validation_error(err: ValidationError, root: yaml.Node | None) -> list[str]:
    lines = []
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p in ("fixed", "schedule", "pathloss",
                                                                             "static", "linear", "waypoints")))
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
        path = ".".join(str(p) for p in loc) or "<root>"
        yline = _yaml_lines(root, tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in loc))
        lines.append(f"{path}: {msg}" + (f" (line {yline})" if yline else ""))
    return lines


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'a.b.c=value'`` -> (['a', 'b', 'c'], parsed YAML value)."""
    if "=" not in text:
        raise ScenarioError([f"--set {text}: expected key.path=value"])
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ScenarioError([f"--set {text}: empty key in path"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{key}: --set value is not valid YAML ({exc.problem})"]) from None
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
                raise ScenarioError([f"{where}: no list element {part!r} (list has {len(node)})"])
            node = node[int(part)]
        elif isinstance(node, dict):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            raise ScenarioError([f"{where}: cannot set a field inside a {type(node).__name__}"])
    last = path[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ScenarioError([f"{'.'.join(path)}: no list element {last!r}"])
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ScenarioError([f"{'.'.join(path)}: cannot set a field inside a {type(node).__name__}"])


def validate_data(data: Any, root: yaml.Node | None = None, source: str = "") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError([f"<root>: expected a mapping of scenario fields, got {type(data).__name__}"], source)
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(_format_validation_error(err, root), source) from None


def read_yaml(path: str | Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file; missing files and syntax errors become ScenarioError."""
    p = Path(path)
    if not p.exists():
        raise ScenarioError([f"{p}: no such file"])
    if p.is_dir():
        raise ScenarioError([f"{p}: is a directory, expected a scenario YAML file"])
    text = p.read_text()
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ScenarioError([f"<yaml>: syntax error: {getattr(exc, 'problem', exc)}{where}"], str(p)) from None
    return data, root


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override, validate. Raises ScenarioError with field paths (and YAML lines)."""
    data, root = read_yaml(path)
    if isinstance(data, dict):
        data = apply_overrides(data, list(overrides or []))
    return validate_data(data, root, str(path))


def scenario_to_dict(scenario: Scenario) -> dict:
    """The fully resolved scenario (defaults filled in), JSON-safe."""
    return json.loads(scenario.model_dump_json())
