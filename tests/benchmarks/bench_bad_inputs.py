"""The bad-input census (issue 16): hostile inputs through the command line, in one process, each
counted as refused properly (exit 2, a ``field: message`` line on stderr, nothing raised) or not.

Run: .venv/bin/pytest -q -m benchmark -s tests/benchmarks/bench_bad_inputs.py
It prints the totals per category and asserts that every input is refused properly. The inputs:
NaN, infinity, 1e308, a string and a bool in every number field of the quickstart (generated from
the schema); broken files (non-UTF-8, non-YAML, over 10 MB, /dev/zero, billion laughs, duplicate
keys, a directory); eleven corruptions of each model slot's checkpoint; output folders (under a
file, under /proc, an unreadable manifest, empty, another scenario's folder, one in use); sweeps
(a billion-laughs grid, too many points, a list as sweep.json for the report).
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import typing
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from simulator.cli import main
from simulator.output_folder import claim
from simulator.schema import Scenario

pytestmark = pytest.mark.benchmark
REPO = Path(__file__).resolve().parents[2]
QUICK = str(REPO / "scenarios" / "quickstart.yaml")
FIELD_LINE = re.compile(r"^\s*\S+: \S")          # field.path: message, or file: message


def number_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, type]]:
    """(dotted path, int or float) of every number field reachable without a list or a union."""
    out = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if typing.get_origin(ann) is typing.Annotated:
            ann = typing.get_args(ann)[0]
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += number_fields(ann, f"{prefix}{name}.")
        elif ann in (int, float):
            out.append((prefix + name, ann))
    return out


def _run(argv: list[str]) -> tuple[int | None, str]:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
    except BaseException as exc:  # noqa: BLE001 - counted as "other"
        return None, f"{type(exc).__name__}: {exc}"
    return code, err.getvalue()


def _cases(tmp: Path) -> dict[str, list[list[str]]]:
    out = tmp / "out"
    cases: dict[str, list[list[str]]] = {"number fields": [], "files": [], "checkpoints": [], "output folders": [],
                                         "sweeps and reports": []}
    sections = {"carrier", "csi_rs", "harq", "phy", "channel", "snr", "link_adaptation", "feedback", "output",
                "gnb", "scheduler", "models"}
    for path, kind in number_fields(Scenario):
        if path.split(".")[0] not in sections and "." in path:
            continue
        for value in (".nan", ".inf", "-.inf", "1e308", "'12'", "true"):
            if kind is int and value in ("1e308",):
                value = "1" + "0" * 30
            cases["number fields"].append(["validate", QUICK, "--set", f"{path}={value}"])

    def file_case(name: str, data: bytes) -> None:
        p = tmp / name
        p.write_bytes(data)
        cases["files"].append(["validate", str(p)])

    good = Path(QUICK).read_text()
    file_case("latin1.yaml", good.encode("utf-8") + "# caf\xe9\n".encode("latin-1"))
    file_case("not_yaml.yaml", b"name: [unclosed\n  - {\n")
    file_case("tabs.yaml", b"name:\tx\n\t- 1\n")
    file_case("dupe.yaml", (good + "seed: 5\n").encode())
    file_case("list.yaml", b"- 1\n- 2\n")
    file_case("empty.yaml", b"")
    file_case("laughs.yaml", ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))).encode())
    big = tmp / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(11 * 2 ** 20)
    cases["files"] += [["validate", str(big)], ["validate", "/dev/zero"], ["validate", str(tmp)],
                       ["validate", str(tmp / "missing.yaml")]]

    ckpt_dir = tmp / "ckpt"
    slots = {"models.bler_predictor": ("ff_bler_tdl_a30", {"type": "ff_bler"}, []),
             "models.csi_codec": ("csi_conv_cell_32x32", {}, ["--set", "gnb.antenna_rows=4", "--set",
                                                             "gnb.antenna_cols=8", "--set", "csi_rs.report.kind=neural",
                                                             "--set", "csi_rs.report.subband_prbs=4"]),
             "models.receiver": ("deeprx_small_20k", {"type": "deeprx"},
                                 ["--set", "phy.backend=link_level", "--set", "phy.receiver=neural", "--set",
                                  "carrier.num_prbs=4", "--set", "phy.num_dmrs_symbols=1"])}
    corruptions = {
        "truncated": lambda j, n: j.write_text(j.read_text()[:40]),
        "list": lambda j, n: j.write_text("[1, 2]"),
        "random": lambda j, n: j.write_bytes(np.random.default_rng(0).bytes(300)),
        "no_npz": lambda j, n: n.unlink(),
        "bad_sha": lambda j, n: n.write_bytes(n.read_bytes()[:-10]),
        "npz_garbage": lambda j, n: _consistent(j, n, b"PK\x03\x04 not a zip"),
        "config_list": lambda j, n: _edit(j, lambda d: d.__setitem__("config", [1])),
        "no_weights_file": lambda j, n: _edit(j, lambda d: d.pop("weights_file")),
        # the model's own config emptied, and another model's file (the BLER predictor's checkpoints are
        # untyped: their config is the model's; the others record model_type and nest it)
        "empty_config": lambda j, n: _edit(j, lambda d: (d["config"].__setitem__("config", {})
                                                         if "model_type" in d["config"] else d.__setitem__("config", {}))),
        "other_model": lambda j, n: _another_models_file(j, n),
        "nan_weights": lambda j, n: _nan_weights(j, n),
    }
    for slot, (stem, extra, sets) in slots.items():
        for cname, corrupt in corruptions.items():
            d = ckpt_dir / f"{slot}-{cname}"
            d.mkdir(parents=True)
            for ext in (".json", ".npz"):
                shutil.copy(REPO / "models" / "checkpoints" / f"{stem}{ext}", d)
            j = d / f"{stem}.json"
            corrupt(j, j.with_suffix(".npz"))
            value = json.dumps({**extra, "checkpoint": str(j)})
            cases["checkpoints"].append(["validate", QUICK, *sets, "--set", f"{slot}={value}"])

    a_file = tmp / "a_file"
    a_file.write_text("x")
    garbage = tmp / "garbage_manifest"
    garbage.mkdir()
    (garbage / "manifest.json").write_text("{not json")
    other = tmp / "other_run"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"scenario": {"name": "else"}, "status": "complete"}))
    cases["output folders"] += [["run", QUICK, "--out", str(a_file / "run")], ["run", QUICK, "--out", str(a_file)],
                                ["run", QUICK, "--out", "/proc/airtune"], ["run", QUICK, "--out", str(garbage)],
                                ["run", QUICK, "--out", ""], ["run", QUICK, "--set", "output.dir="],
                                ["run", QUICK, "--out", str(other)], ["run", QUICK, "--out", str(out / "busy")]]

    grid = tmp / "grid.yaml"
    grid.write_text(f"base: {QUICK}\ngrid: {{seed: [{', '.join(map(str, range(101)))}], "
                    f"snr.snr_db: [{', '.join(map(str, range(100)))}]}}\noutput: {{dir: {out / 's'}}}\n")
    laughs = tmp / "laughs_sweep.yaml"
    laughs.write_text("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
        + f"base: {QUICK}\ngrid: {{seed: *i}}\noutput: {{dir: {out / 'l'}}}\n")
    bad_json = tmp / "sweep_list"
    bad_json.mkdir()
    (bad_json / "sweep.json").write_text("[1, 2]")
    cases["sweeps and reports"] += [["sweep", str(grid), "--no-progress"], ["sweep", str(laughs), "--no-progress"],
                                    ["report", str(bad_json)], ["report", str(tmp)],
                                    ["sweep", str(grid), "--out", "", "--no-progress"]]
    return cases


def _edit(j: Path, change) -> None:
    doc = json.loads(j.read_text())
    change(doc)
    j.write_text(json.dumps(doc))


def _consistent(j: Path, n: Path, data: bytes) -> None:
    """A weights file replaced, and its sha256 recorded: only its contents are wrong."""
    from models.checkpoint import file_sha256

    n.write_bytes(data)
    _edit(j, lambda d: d.__setitem__("sha256", file_sha256(n)))


def _another_models_file(j: Path, n: Path) -> None:
    """The files of another model under this checkpoint's name (mlp_bler for the BLER predictor, a
    conv_csi codec for the receiver, a deeprx receiver for the codec)."""
    other = {"ff_bler_tdl_a30": "mlp_bler_tdl_a30", "deeprx_small_20k": "csi_conv_cell_32x32",
             "csi_conv_cell_32x32": "deeprx_small_20k"}[j.stem]
    src = REPO / "models" / "checkpoints" / other
    shutil.copy(src.with_suffix(".npz"), n)
    doc = json.loads(src.with_suffix(".json").read_text())
    doc["weights_file"] = n.name
    j.write_text(json.dumps(doc))


def _nan_weights(j: Path, n: Path) -> None:
    from models.npz_file import save_npz

    with np.load(n) as data:
        w = {k: data[k] for k in data.files}
    first = sorted(w)[0]
    w[first] = np.full_like(w[first], np.nan)
    _edit(j, lambda d: d.__setitem__("sha256", save_npz(n, w)))


def test_bad_input_census(tmp_path):
    cases = _cases(tmp_path)
    rows, failures = [], []
    with claim(tmp_path / "out" / "busy"):           # the folder one output-folder case finds in use
        for category, argvs in cases.items():
            ok = 0
            for argv in argvs:
                code, err = _run(argv)
                lines = [ln for ln in err.splitlines() if ln.strip()]
                if code == 2 and any(FIELD_LINE.match(ln) for ln in lines) and "Traceback" not in err:
                    ok += 1
                else:
                    failures.append((argv, code, err[-300:]))
            rows.append((category, len(argvs), ok))
    total = sum(n for _, n, _ in rows)
    good = sum(k for _, _, k in rows)
    print(f"\nbad inputs: {total} tried, {good} exit 2 with field: message, {total - good} other")
    for category, n, k in rows:
        print(f"  {category}: {n} tried, {k} refused properly")
    for argv, code, err in failures[:20]:
        argv = [a if len(a) < 200 else a[:60] + "..." + a[-100:] for a in argv]
        print(f"  NOT REFUSED PROPERLY (exit {code}): {' '.join(argv)[-140:]}\n    {err!r}")
    assert not failures
