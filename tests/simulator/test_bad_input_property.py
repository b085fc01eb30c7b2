"""The bad-input contract on mutated bundled scenarios (issue 16, item 1), property-based: whatever a
mutation does to a scenario file (a leaf replaced by a hostile value, a key removed, an unknown key
added), validation either accepts it, with every float finite and every path it names checked, or
refuses it with ``field.path: message (line N)`` lines and a ConfigError, never another exception."""
from __future__ import annotations

import math
import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from simulator.loader import ConfigError, load_scenario
from simulator.validation import check_files

REPO = Path(__file__).resolve().parents[2]
BUNDLED = ["quickstart.yaml", "cell.yaml", "mimo_link.yaml", "experiments/csi_cell/base.yaml"]
DOCS = {name: yaml.safe_load((REPO / "scenarios" / name).read_text()) for name in BUNDLED}
# an error line: a dotted field path (list indices as numbers, <root>/<file> for whole-file problems),
# then the message, then the YAML line when the field is in the file
ERROR_LINE = re.compile(r"^(<root>|<file>|[A-Za-z_][\w]*(\.[\w]+)*): \S.*$")

HOSTILE = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 1e-300, 0, -1, 2 ** 63,
                     -(2 ** 63), True, False, None, "", " ", "1.0", "nan", "\u00e9\u0000", [], {}, [[]],
                     {"x": 1}, "../../etc/passwd", "/dev/zero"]),
    st.integers(-10 ** 12, 10 ** 12), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.integers(-5, 5), max_size=4))


def _leaves(doc, path=()):
    """Every (path, value) in a parsed YAML document, containers included."""
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, (*path, i))


def _mutated(doc, path, action, value):
    import copy

    out = copy.deepcopy(doc)
    if not path:
        return value if action == "replace" else out
    node = out
    for key in path[:-1]:
        node = node[key]
    last = path[-1]
    if action == "replace":
        node[last] = value
    elif action == "delete":
        del node[last]
    elif isinstance(node[last], dict):              # "add": an unknown key beside the others
        node[last]["not_a_field"] = value
    else:
        node[last] = value
    return out


@st.composite
def mutations(draw):
    name = draw(st.sampled_from(BUNDLED))
    paths = [p for p, _ in _leaves(DOCS[name]) if p != ("output",) and p[:1] != ("output",)]
    path = draw(st.sampled_from(paths))
    action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    return name, path, action, draw(HOSTILE)


def _all_floats_finite(obj) -> bool:
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(_all_floats_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_all_floats_finite(v) for v in obj)
    return True


@settings(max_examples=int(__import__("os").environ.get("AIRTUNE_HYPOTHESIS_EXAMPLES", 300)), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations())
def test_every_mutation_is_accepted_whole_or_refused_with_its_field(tmp_path_factory, mutation):
    name, path, action, value = mutation
    doc = _mutated(DOCS[name], path, action, value)
    folder = tmp_path_factory.mktemp("mut")
    f = folder / "scenario.yaml"
    try:
        f.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    except (yaml.YAMLError, UnicodeEncodeError):
        assume(False)                                 # not representable as YAML: another example
    try:
        sc = check_files(load_scenario(f, [f"output.dir={folder / 'out'}"]), f)
    except ConfigError as exc:
        assert exc.errors, "a refusal names at least one problem"
        for line in exc.errors:
            assert ERROR_LINE.match(line), f"{name} {path} {action} {value!r}: {line!r}"
        return
    # accepted: nothing non-finite got through, and the scenario round-trips through its own dump
    dumped = sc.model_dump(mode="python")
    assert _all_floats_finite(dumped), f"{name} {path} {action} {value!r}"
    assert sc.duration_s > 0 and sc.ues
