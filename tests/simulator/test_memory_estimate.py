"""The memory check: a run whose channels cannot fit is refused before anything is drawn, naming
duration_s when one UE's channel alone is too large and ues when only all of them together are."""
from __future__ import annotations

import pytest

from models.config import FieldError
from simulator.loader import ConfigError, load_scenario
from simulator.memory_estimate import BASE_BYTES, channel_bytes, check_memory
from simulator.validation import check_files
from tests.conftest import REPO


def test_a_ten_hour_quickstart_is_refused_on_duration_s(monkeypatch):
    monkeypatch.chdir(REPO)
    path = REPO / "scenarios" / "quickstart.yaml"
    sc = load_scenario(path, overrides=["duration_s=36000"])
    with pytest.raises(ConfigError, match=r"duration_s: the run's channels need about 749.1 GB at their peak .* "
                                          r"shorten the run \(line 3\)"):
        check_files(sc, path)
    check_files(load_scenario(path), path)                                  # 4 s: about 1 GB


def test_many_ues_are_refused_on_ues_and_the_estimate_adds_up(monkeypatch):
    monkeypatch.chdir(REPO)
    sc = load_scenario(REPO / "scenarios" / "cell.yaml")                   # 8 UEs, 4x8, UMi, 10 s
    total, gen, kept = channel_bytes(sc)
    slots_pairs = sc.num_slots * 32
    assert gen == [slots_pairs * 8.3e3] * 8 and kept == [slots_pairs * 24 * 8.0] * 8
    assert total == pytest.approx(BASE_BYTES + sum(kept) + gen[0])
    check_memory(sc, available_bytes=total / 0.9 + 1)                       # just fits
    with pytest.raises(FieldError) as exc:
        check_memory(sc, available_bytes=total / 0.9 - 1e8)
    assert exc.value.path == "ues" and "fewer UEs" in str(exc.value)
    with pytest.raises(FieldError) as exc:
        check_memory(sc, available_bytes=gen[0] / 0.9)
    assert exc.value.path == "duration_s"
