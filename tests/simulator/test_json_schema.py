"""`airtune schema` (issue 16, item 7): a JSON Schema that names its dialect, accepts every bundled
scenario and refuses what the validator refuses, where JSON Schema can say it."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from simulator.loader import ConfigError, apply_overrides, validate_data
from simulator.schema import JSON_SCHEMA_DIALECT, TDL_PROFILES, scenario_json_schema

REPO = Path(__file__).resolve().parents[2]
SCHEMA = scenario_json_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _bundled_scenarios() -> list[Path]:
    """Every YAML under scenarios/ that is a scenario (a name and a duration, not a sweep's base)."""
    out = []
    for p in sorted((REPO / "scenarios").rglob("*.yaml")):
        doc = yaml.safe_load(p.read_text())
        if isinstance(doc, dict) and "name" in doc and "duration_s" in doc and "base" not in doc:
            out.append(p)
    return out


def test_the_schema_names_its_dialect_and_lists_the_profiles():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == JSON_SCHEMA_DIALECT
    assert SCHEMA["$defs"]["ChannelConfig"]["properties"]["profile"]["enum"] == list(TDL_PROFILES)


@pytest.mark.parametrize("path", _bundled_scenarios(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_bundled_scenario_is_valid_against_the_schema(path):
    doc = yaml.safe_load(path.read_text())
    errors = [e.message for e in VALIDATOR.iter_errors(doc)]
    assert errors == [], errors
    validate_data(doc)                              # and the validator agrees


REFUSED = [["seed=true"], ['duration_s="1.0"'], ["channel.profile=Z"], ["not_a_field=1"], ["carrier.num_prbs=0"],
           ["csi_rs.period_ms=1e308"], ["gnb.position_m=[2e6, 0, 10]"], ["output.dir="], ["ues=[]"],
           ["feedback.capacity_kbps=1e-300"], ["phy.backend=quantum"], ["ues.0.mobility.model=teleport"]]


@pytest.mark.parametrize("overrides", REFUSED, ids=lambda o: o[0])
def test_refused_by_both(overrides):
    doc = apply_overrides(yaml.safe_load((REPO / "scenarios" / "quickstart.yaml").read_text()), overrides)
    assert list(VALIDATOR.iter_errors(doc)), f"the JSON Schema accepts {overrides}"
    with pytest.raises(ConfigError):
        validate_data(doc)
