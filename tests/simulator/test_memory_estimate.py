"""The memory check: a run whose channels cannot fit is refused before anything is drawn, naming
duration_s when one UE's channel alone is too large and ues when only all of them together are."""
from __future__ import annotations

import pytest

from models.config import FieldError
from simulator.loader import ConfigError, load_scenario
from simulator.memory_estimate import BASE_BYTES, channel_bytes, check_memory
from simulator.validation import check_files
from tests.conftest import REPO


def test_a_ten_hour_quickstart_is_refused_on_duration_s_by_a_small_machine(monkeypatch):
    monkeypatch.chdir(REPO)
    path = REPO / "scenarios" / "quickstart.yaml"
    sc = load_scenario(path, overrides=["duration_s=36000", "channel.model=cdl", "channel.profile=C"])
    # 72e6 slots x 16 B of per-slot arrays = 1.15 GB, + 0.9 GB + CDL's chunks (~0.07 GB): 2.1 GB
    with pytest.raises(FieldError, match=r"the run needs about 2.1 GB at its peak .* "
                                         r"1.2 GB of per-slot arrays for 1 UE\(s\)\), more than 1.8 GB .* "
                                         r"shorten the run") as exc:
        check_memory(sc, available_bytes=2e9)
    assert exc.value.path == "duration_s"
    check_files(sc, path)                                                   # fits this machine
    check_files(load_scenario(path), path)


@pytest.mark.parametrize("model", ["tdl", "cdl"])            # UMi: the cell test below
def test_a_drawn_channel_is_bounded_whatever_the_duration(monkeypatch, model):
    from simulator.channel.fading import CACHED_CHUNKS, chunk_samples

    monkeypatch.chdir(REPO)
    path = REPO / "scenarios" / "quickstart.yaml"
    per_sample = {"tdl": 10.2e3}.get(model, 8.3e3)
    chunk = chunk_samples(model, 1)
    assert chunk % 64 == 0 and chunk * per_sample <= 64e6 < (chunk + 64) * per_sample
    for duration_s in (600, 36000):
        overrides = [f"duration_s={duration_s}", f"channel.model={model}"]
        overrides += ["channel.profile=C"] if model == "cdl" else []
        total, gen, kept = channel_bytes(load_scenario(path, overrides=overrides))
        assert gen == [chunk * per_sample] and kept == [CACHED_CHUNKS * chunk * 24 * 8.0]
        slot_arrays = 16.0 * duration_s * 2000                        # sample index and SNR per slot
        assert total == pytest.approx(BASE_BYTES + 64e6 + kept[0] + slot_arrays, rel=0.01)
    check_files(load_scenario(path, overrides=["duration_s=36000"]), path)   # ten hours: accepted


def test_many_ues_are_refused_on_ues_and_the_estimate_adds_up(monkeypatch):
    monkeypatch.chdir(REPO)
    sc = load_scenario(REPO / "scenarios" / "cell.yaml")                   # 8 UEs, 4x8, UMi, 10 s
    total, gen, kept = channel_bytes(sc)
    from simulator.channel.fading import CACHED_CHUNKS, chunk_samples

    chunk_pairs = chunk_samples("umi", 32) * 32
    assert gen == [chunk_pairs * 8.3e3] * 8 and kept == [CACHED_CHUNKS * chunk_pairs * 24 * 8.0] * 8
    assert total == pytest.approx(BASE_BYTES + 16.0 * sc.num_slots * 8 + sum(kept) + gen[0])
    check_memory(sc, available_bytes=total / 0.9 + 1)                       # just fits
    alone = BASE_BYTES + gen[0] + kept[0] + 16.0 * sc.num_slots                # one UE's share
    with pytest.raises(FieldError) as exc:
        check_memory(sc, available_bytes=(alone + total) / 2 / 0.9)         # one UE fits, eight do not
    assert exc.value.path == "ues" and "fewer UEs" in str(exc.value)
    with pytest.raises(FieldError) as exc:
        check_memory(sc, available_bytes=gen[0] / 0.9)
    assert exc.value.path == "duration_s"
