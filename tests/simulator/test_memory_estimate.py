"""The memory check: a run whose channels cannot fit is refused before anything is drawn, naming
duration_s when one UE's channel alone is too large and ues when only all of them together are."""
from __future__ import annotations

import pytest

from models.config import FieldError
from simulator.loader import ConfigError, load_scenario
from simulator.memory_estimate import BASE_BYTES, channel_bytes, check_memory
from simulator.validation import check_files
from tests.conftest import REPO


def test_a_ten_hour_cdl_quickstart_is_refused_on_duration_s(monkeypatch):
    monkeypatch.chdir(REPO)
    path = REPO / "scenarios" / "quickstart.yaml"
    sc = load_scenario(path, overrides=["duration_s=36000", "channel.model=cdl", "channel.profile=C"])
    # CDL is drawn whole: 72e6 slots x (8.3 kB at the peak + 24 paths x 8 B + 16 B) + 0.9 GB = 613.5 GB
    with pytest.raises(ConfigError, match=r"duration_s: the run's channels need about 613.5 GB at their peak .* "
                                          r"shorten the run \(line 3\)"):
        check_files(sc, path)
    check_files(load_scenario(path), path)                                  # 4 s: about 1 GB


def test_a_tdl_channel_is_bounded_whatever_the_duration(monkeypatch):
    from simulator.channel.fading import TDL_CACHED_CHUNKS, tdl_chunk_samples

    monkeypatch.chdir(REPO)
    path = REPO / "scenarios" / "quickstart.yaml"
    chunk = tdl_chunk_samples(1)
    assert chunk % 64 == 0 and chunk * 10.2e3 <= 64e6 < (chunk + 64) * 10.2e3
    for duration_s in (600, 36000):
        total, gen, kept = channel_bytes(load_scenario(path, overrides=[f"duration_s={duration_s}"]))
        assert gen == [chunk * 10.2e3] and kept == [TDL_CACHED_CHUNKS * chunk * 24 * 8.0]
        slot_arrays = 16.0 * duration_s * 2000                        # sample index and SNR per slot
        assert total == pytest.approx(BASE_BYTES + 64e6 + 3.6e6 + slot_arrays, rel=0.01)
    check_files(load_scenario(path, overrides=["duration_s=36000"]), path)   # ten hours: accepted


def test_many_ues_are_refused_on_ues_and_the_estimate_adds_up(monkeypatch):
    monkeypatch.chdir(REPO)
    sc = load_scenario(REPO / "scenarios" / "cell.yaml")                   # 8 UEs, 4x8, UMi, 10 s
    total, gen, kept = channel_bytes(sc)
    slots_pairs = sc.num_slots * 32
    assert gen == [slots_pairs * 8.3e3] * 8 and kept == [slots_pairs * 24 * 8.0] * 8
    assert total == pytest.approx(BASE_BYTES + 16.0 * sc.num_slots * 8 + sum(kept) + gen[0])
    check_memory(sc, available_bytes=total / 0.9 + 1)                       # just fits
    with pytest.raises(FieldError) as exc:
        check_memory(sc, available_bytes=total / 0.9 - 1e8)
    assert exc.value.path == "ues" and "fewer UEs" in str(exc.value)
    with pytest.raises(FieldError) as exc:
        check_memory(sc, available_bytes=gen[0] / 0.9)
    assert exc.value.path == "duration_s"
