"""Markdown reference of every scenario field (path, type, default, description), from the schema.

``python -m simulator.schema_doc`` prints it; the documentation's field reference
(``docs/reference/scenario-fields.md``) embeds it between markers and a test checks that the page is
current (regenerate with ``python -m simulator.schema_doc --write``).
"""
from __future__ import annotations

import sys
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from simulator.schema import Scenario

BEGIN, END = "<!-- fields:begin -->", "<!-- fields:end -->"


def _type_name(ann) -> str:
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in typing.get_args(ann))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(ann) if a is not Ellipsis]
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    return getattr(ann, "__name__", str(ann))


def _default(field) -> str:
    if field.default is not PydanticUndefined:
        d = field.default
        return "—" if d is None else f"`{list(d) if isinstance(d, tuple) else d}`"
    if field.default_factory is not None:
        return "(section defaults)"
    return "**required**"


def _rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if typing.get_origin(ann) is typing.Annotated:
            ann = typing.get_args(ann)[0]
        variants = [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows += _rows(ann, f"{prefix}{name}.")
        elif len(variants) == 1 and type(None) in typing.get_args(ann):      # optional section
            rows.append((prefix + name, f"section or null", "`null`", f.description or ""))
            rows += _rows(variants[0], f"{prefix}{name}.")
        elif typing.get_origin(ann) is list and variants:
            rows += _rows(variants[0], f"{prefix}{name}[].")
        elif variants:  # discriminated union
            for v in variants:
                tag = typing.get_args(v.model_fields["model"].annotation)[0]
                rows.append((f"{prefix}{name}.model", f"`{tag}`", "", (v.__doc__ or "").strip()))
                rows += [r for r in _rows(v, f"{prefix}{name}.") if not r[0].endswith(".model")]
        else:
            rows.append((prefix + name, _type_name(ann), _default(f), f.description or ""))
    return rows


def markdown() -> str:
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    esc = lambda text: text.replace("\\|", "|").replace("|", "\\|")  # noqa: E731  (pipes inside cells)
    lines += [f"| `{p}` | {esc(t)} | {d} | {esc(m)} |" for p, t, d, m in _rows(Scenario, "")]
    return "\n".join(lines)


FIELDS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "reference" / "scenario-fields.md"


def write_page(path: Path = FIELDS_PAGE) -> None:
    text = path.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{markdown()}\n{END}{tail}")


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_page()
    else:
        print(markdown())
