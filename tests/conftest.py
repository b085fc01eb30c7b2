"""Shared fixtures: tiny scenarios as dicts (validated the same way YAML files are)."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# link_level runs here are a few hundred slots: no background compilation of neighbouring MCS
# (simulator/phy/compile_ahead.py; its own tests and benchmark turn it back on)
os.environ.setdefault("AIRTUNE_COMPILE_AHEAD", "off")

SCENARIOS = Path(__file__).parent / "scenarios"
REPO = Path(__file__).resolve().parent.parent

TINY = {
    "name": "tiny",
    "seed": 7,
    "duration_s": 0.2,
    "carrier": {"subcarrier_spacing_khz": 30, "num_prbs": 12, "carrier_frequency_ghz": 3.5},
    "csi_rs": {"period_ms": 10, "report_delay_ms": 2},
    "harq": {"max_transmissions": 4, "k1_slots": 2},
    "phy": {"backend": "abstraction", "receiver": "lmmse"},
    "channel": {"model": "tdl", "profile": "B", "delay_spread_ns": 100},
    "snr": {"model": "fixed", "snr_db": 15},
    "ues": [{"id": 0, "mobility": {"model": "linear", "speed_kmh": 30, "start_m": [0, 0, 1.5], "heading_deg": 0}}],
    "link_adaptation": {"olla": {"bler_target": 0.1, "step_up_db": 0.5}},
}


def _set(d: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d[int(k)] if isinstance(d, list) else d.setdefault(k, {})
    if isinstance(d, list):
        d[int(keys[-1])] = value
    else:
        d[keys[-1]] = value


@pytest.fixture
def make_scenario():
    """make_scenario(**{"dotted.key": value}) -> validated Scenario based on TINY (schema and files)."""
    from simulator.loader import validate_data
    from simulator.validation import check_files

    def make(overrides: dict | None = None, base: dict | None = None):
        data = copy.deepcopy(base or TINY)
        for k, v in (overrides or {}).items():
            _set(data, k, v)
        return check_files(validate_data(data))

    return make


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
