"""Scenario loading: the quickstart is accepted as written; every bad input names its field, exit 2."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from simulator.cli import main
from simulator.loader import ConfigError, load_scenario
from tests.conftest import REPO, SCENARIOS

QUICKSTART = REPO / "scenarios" / "quickstart.yaml"


def test_quickstart_accepted_as_written():
    sc = load_scenario(QUICKSTART)
    assert sc.carrier.slot_us == 500
    assert sc.num_slots == 8000
    assert sc.ues[0].mobility.speed_kmh == 30
    assert sc.link_adaptation.olla.step_up_db == 0.5


def _errors(overrides, path=QUICKSTART):
    with pytest.raises(ConfigError) as exc:
        load_scenario(path, overrides)
    return exc.value.errors


@pytest.mark.parametrize("override, field, words", [
    (["csi_rs.period_ms=-20"], "csi_rs.period_ms", "greater than 0"),
    (["csi_rs.report_delay_ms=-1"], "csi_rs.report_delay_ms", "greater than or equal to 0"),
    (["carrier.num_prbs=300"], "carrier.num_prbs", "<= 273"),
    (["carrier.subcarrier_spacing_khz=60", "carrier.num_prbs=200"], "carrier.num_prbs", "<= 135"),
    (["snr={model: schedule, points: [[0, 5], [2, 9], [1, 3]]}"], "snr.points", "strictly increasing"),
    (["channel.profile=Q"], "channel.profile", "unknown TDL profile 'Q'"),
    (["channel={model: cdl, profile: A30}"], "channel.profile", "unknown CDL profile"),
    (["bogus=1"], "bogus", "unknown key"),
    (["ues.0.mobility.wings=2"], "ues.0.mobility.wings", "unknown key"),
    (["ues.0.mobility.speed_kmh=fast"], "ues.0.mobility.speed_kmh", 'expected a number, got "fast"'),
    # numbers as `airtune schema` has them: no bool or string for a number, and every float finite
    (["seed=true"], "seed", "expected an integer, got true"),
    (["duration_s='1.0'"], "duration_s", 'expected a number, got "1.0"'),
    (["gnb.tx_power_dbm=.inf"], "gnb.tx_power_dbm", "finite number"),
    (["ues.0.mobility.start_m=[.nan, 0, 1.5]"], "ues.0.mobility.start_m.0", "finite number"),
    (["snr.snr_db=-.inf"], "snr.snr_db", "finite number"),
    (["feedback.capacity_kbps=1e-300"], "feedback.capacity_kbps", "greater than or equal to 0.001"),
    (["harq.max_transmissions=0"], "harq.max_transmissions", "greater than or equal to 1"),
    (["csi_rs.period_ms=0.7"], "csi_rs.period_ms", "whole number of 0.5 ms slots"),
    (["phy.backend=quantum"], "phy.backend", "'abstraction' or 'link_level'"),
    (["snr.model=telepathy"], "snr", "does not match any of the expected tags"),
])
def test_bad_values_name_their_field(override, field, words):
    errors = _errors(override)
    assert any(e.startswith(f"{field}:") and words in e for e in errors), errors


def test_errors_carry_the_yaml_line():
    errors = _errors([], SCENARIOS / "bad_fields.yaml")
    assert errors == ["csi_rs.period_ms: Input should be greater than 0 (got -20) (line 5)"]


def test_missing_file_and_bad_syntax():
    assert "no such file" in _errors([], SCENARIOS / "nope.yaml")[0]
    err = _errors([], SCENARIOS / "bad_syntax.yaml")[0]
    assert err.startswith("<yaml>: syntax error") and "line" in err


def test_set_override_applies_with_validation():
    sc = load_scenario(QUICKSTART, ["phy.backend=link_level", "seed=3", "snr.snr_db=7.5"])
    assert (sc.phy.backend, sc.seed, sc.snr.snr_db) == ("link_level", 3, 7.5)
    assert "--set" in _errors(["phy.backend"])[0]


@pytest.mark.parametrize("argv", [
    ["validate", str(SCENARIOS / "bad_fields.yaml")],
    ["validate", str(SCENARIOS / "bad_syntax.yaml")],
    ["validate", str(SCENARIOS / "missing.yaml")],
    ["validate", str(QUICKSTART), "--set", "carrier.num_prbs=999"],
    ["run", str(QUICKSTART), "--set", "csi_rs.period_ms=-5"],
])
def test_cli_exit_2_without_traceback(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "invalid scenario" in err or "no such file" in err


def test_cli_subprocess_exit_code_and_message():
    res = subprocess.run([sys.executable, "-m", "simulator.cli", "validate", str(QUICKSTART),
                          "--set", "csi_rs.period_ms=-1"], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2
    assert "csi_rs.period_ms: Input should be greater than 0 (got -1)" in res.stderr
    assert "Traceback" not in res.stderr


def test_validate_ok_and_schema(capsys):
    assert main(["validate", str(QUICKSTART)]) == 0
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert "csi_rs" in schema["properties"] and schema["additionalProperties"] is False


def test_every_field_has_a_description():
    """The field reference page is generated from these; a field without a description is a doc gap."""
    from simulator.schema import Scenario

    missing = []

    def walk(model, prefix):
        for name, f in model.model_fields.items():
            ann = f.annotation
            sub = getattr(ann, "model_fields", None)
            if sub is not None:
                walk(ann, f"{prefix}{name}.")
            elif not f.description and name not in ("model",):
                missing.append(prefix + name)

    walk(Scenario, "")
    assert missing == [], missing


def test_field_reference_page_is_current():
    from simulator.schema_doc import BEGIN, END, FIELDS_PAGE, markdown

    page = FIELDS_PAGE.read_text()
    assert page.split(BEGIN, 1)[1].split(END, 1)[0].strip() == markdown().strip(), \
        "docs/reference/scenario-fields.md is stale: run python -m simulator.schema_doc --write"


@pytest.mark.parametrize("channel", [{"model": "umi"}, {"model": "tdl", "profile": "A30"},
                                     {"model": "ray_traced", "ray_traced": {"scene": "etoile"}}])
def test_a_scenario_written_out_with_its_defaults_reads_back(make_scenario, channel):
    """Sweep points and manifests carry every field, at its default where unset: reading them back is not
    setting the fields a channel model refuses."""
    from simulator.loader import validate_data

    extra = {"snr": {"model": "fixed", "snr_db": 10}, "ues.0.mobility.start_m": [-60, 0, 1.5]}
    sc = make_scenario({"channel": channel, **extra})
    again = validate_data(sc.model_dump(mode="json"))
    assert again.channel == sc.channel


@pytest.mark.parametrize("content, words", [
    (b"name: x\nseed: \xff\xfe\n", "<file>: not UTF-8 text (byte 0xff at line 2)"),
    (b"name: a\nseed: 1\nname: b\n", "name: duplicate key (lines 1 and 3)"),
    (b"carrier: {num_prbs: 52, num_prbs: 24}\n", "carrier.num_prbs: duplicate key (lines 1 and 1)"),
    (b"a: &a [" + b",".join([b"1"] * 20) + b"]\n" + b"".join(
        bytes(f"{c}: &{c} [" + ",".join([f"*{p}"] * 20) + "]\n", "ascii") for p, c in zip("abcde", "bcdef")),
     "<yaml>: more than 200,000 nodes once its aliases are expanded"),
    (b"[" * 5000 + b"]" * 5000, "<yaml>"),
])
def test_bad_files_are_refused_before_they_are_expanded(tmp_path, content, words):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    errors = _errors([], path)
    assert any(words in e for e in errors), errors


def test_oversized_and_endless_files_are_refused(tmp_path):
    from simulator.loader import MAX_YAML_BYTES

    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * (MAX_YAML_BYTES // 10 + 1))
    assert _errors([], big) == ["<file>: larger than 10 MB (a scenario is a few kB)"]
    assert _errors([], "/dev/zero") == ["<file>: larger than 10 MB (a scenario is a few kB)"]


def test_exponent_floats_are_numbers(tmp_path):
    """YAML 1.2 floats without a dot (``1e-3``, ``2E3``) are numbers, in a file and in --set (PyYAML's YAML 1.1
    would read them as strings, which a number field refuses); a quoted one stays a string."""
    text = QUICKSTART.read_text() + "feedback: {capacity_kbps: 2E3, delay_ms: 1e-1}\n"
    (tmp_path / "q.yaml").write_text(text)
    sc = load_scenario(tmp_path / "q.yaml", ["snr.snr_db=1.5e1"])
    assert (sc.feedback.capacity_kbps, sc.feedback.delay_ms, sc.snr.snr_db) == (2000.0, 0.1, 15.0)
    assert 'expected a number, got "1e3"' in _errors(['feedback.capacity_kbps="1e3"'])[0]
