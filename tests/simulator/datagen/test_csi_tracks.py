"""CSI sources cdl_track (one CDL realisation sampled along a drive) and ray_traced (Sionna RT area drops
and tracks): layout, normalisation, ordering, time continuity, seeds, config errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from models.csi_codec.data import load_split, load_track, read_description
from simulator.datagen.csi import CsiDataConfig, generate_dataset, load_data_config

SMALL = dict(bs_array_rows=2, bs_array_cols=2, num_subcarriers=8)
CANYON = dict(scene="simple_street_canyon", bs_position_m=[-30.0, 0.0, 20.0], max_depth=1, samples_per_src=10_000)


def _rt(**kw) -> CsiDataConfig:
    rt = {**CANYON, **kw.pop("ray_traced")}
    return CsiDataConfig.model_validate({"source": "ray_traced", **SMALL, "ray_traced": rt, **kw})


def _corr(x: np.ndarray, lag: int) -> float:
    """Mean |<h_t, h_{t+lag}>| / (|h_t| |h_{t+lag}|) over t: 1 for identical channels, ~1/sqrt(dim) for i.i.d."""
    h = (x[..., 0] + 1j * x[..., 1]).reshape(len(x), -1)
    a, b = h[:-lag], h[lag:]
    return float(np.mean(np.abs(np.sum(a * np.conj(b), 1)) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def test_cdl_track_is_continuous_in_time_and_reproducible(tmp_path):
    cfg = CsiDataConfig(source="cdl_track", cdl_profile="A", delay_spread_ns=300, ue_speed_kmh=30, track_spacing_m=0.01,
                        num_samples=300, shard_size=100, **SMALL)
    generate_dataset(cfg, tmp_path / "a")
    x, dist, spacing = load_track(tmp_path / "a")
    assert x.shape == (300, 4, 8, 2) and spacing == 0.01
    np.testing.assert_allclose(dist, np.arange(300) * 0.01)
    np.testing.assert_allclose(np.mean(np.sum(x ** 2, -1), (1, 2)), 1.0, rtol=1e-5)
    # 1 cm apart (0.12 wavelengths) the channel barely moves; 1 m apart (12 wavelengths) it has decorrelated
    near, far = _corr(x, 1), _corr(x[::100], 1)
    assert near > 0.97 and far < 0.8, (near, far)
    desc = read_description(tmp_path / "a")
    assert desc["track"] == {"spacing_m": 0.01, "length_m": pytest.approx(2.99), "waypoints_m": [[0, 0, 0], [2.99, 0, 0]]}
    with np.load(tmp_path / "a" / "shard_00001.npz") as d:
        np.testing.assert_allclose(d["position_m"][:, 0], np.arange(100, 200) * 0.01)
    generate_dataset(cfg, tmp_path / "b")
    assert np.array_equal(load_track(tmp_path / "b")[0], x)
    generate_dataset(cfg.model_copy(update={"seed": 1}), tmp_path / "c")
    assert not np.array_equal(load_track(tmp_path / "c")[0], x)


def test_ray_traced_area(tmp_path):
    cfg = _rt(num_samples=6, shard_size=3, seed=2, ray_traced={"area": {"corners_m": [[-60, -8], [60, 8]]}})
    generate_dataset(cfg, tmp_path / "a")
    desc = read_description(tmp_path / "a")
    assert desc["shape"] == [4, 8, 2] and "track" not in desc and set(desc["dropped"]) >= {"covered", "no_path"}
    x = np.concatenate([load_split(tmp_path / "a", s) for s in ("train", "val", "test")])
    assert x.shape == (6, 4, 8, 2) and x.dtype == np.float32
    np.testing.assert_allclose(np.mean(np.sum(x ** 2, -1), (1, 2)), 1.0, rtol=1e-5)
    pos = []
    for shard in desc["shards"]:
        with np.load(tmp_path / "a" / shard["file"]) as d:
            pos.append(d["position_m"])
            assert np.all(d["scale"] > 0)
    pos = np.concatenate(pos)
    assert np.all((pos[:, 0] >= -60) & (pos[:, 0] <= 60) & (pos[:, 1] >= -8) & (pos[:, 1] <= 8))
    assert np.all(pos[:, 2] == 1.5) and len(np.unique(pos[:, 0])) == 6
    generate_dataset(cfg, tmp_path / "b")                                # same seed, same drops and paths
    # Dr.Jit's LLVM backend sums path contributions in a thread-dependent order: the same drop
    # reproduces to float32 rounding (seen 1.3e-7 relative on CI), not bit for bit
    np.testing.assert_allclose(load_split(tmp_path / "b", "train"), load_split(tmp_path / "a", "train"),
                               rtol=1e-5, atol=1e-6)


def test_ray_traced_track_in_order(tmp_path):
    waypoints = [[-50.0, 0.0, 1.5], [-49.0, 0.0, 1.5], [-49.0, 0.55, 1.5]]
    cfg = _rt(shard_size=4, ray_traced={"track": {"waypoints_m": waypoints, "spacing_m": 0.1}})
    assert cfg.num_samples == 16                                       # 1.55 m every 0.1 m: 0 .. 1.5
    generate_dataset(cfg, tmp_path / "t")
    x, dist, spacing = load_track(tmp_path / "t")
    assert x.shape == (16, 4, 8, 2) and spacing == 0.1
    np.testing.assert_allclose(dist, np.arange(16) * 0.1, atol=1e-12)
    pos = np.concatenate([np.load(tmp_path / "t" / s["file"])["position_m"] for s in read_description(tmp_path / "t")["shards"]])
    np.testing.assert_allclose(pos[:11, 0], -50 + np.arange(11) * 0.1, atol=1e-9)    # along x, then round the corner
    np.testing.assert_allclose(pos[11:, 1], (np.arange(11, 16) - 10) * 0.1, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(np.diff(pos, axis=0), axis=1)[np.r_[0:9, 11:14]], 0.1, atol=1e-9)
    parts = [load_split(tmp_path / "t", s) for s in ("train", "val", "test")]
    assert np.array_equal(np.concatenate(parts), x)                    # splits cut the track contiguously
    assert read_description(tmp_path / "t")["track"]["length_m"] == pytest.approx(1.55)


def test_track_without_coverage_is_an_error_naming_the_position(tmp_path):
    # (0, 20) is inside a building of the canyon: with max_depth 0 (line of sight only) no path reaches it
    cfg = _rt(ray_traced={"max_depth": 0, "track": {"waypoints_m": [[0, 20, 1.5], [0.2, 20, 1.5]], "spacing_m": 0.1}})
    with pytest.raises(ValueError, match=r"no path reaches the UE at sample 0 \(position_m \[0.0, 20.0, 1.5\]"):
        generate_dataset(cfg, tmp_path / "t")


def test_track_and_source_config_errors_name_the_field(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("source: ray_traced\nray_traced:\n  scene: munich\n  bs_position_m: [0, 0, 10]\n"
                 "  track: {waypoints_m: [[0, 0, 1.5], [10, 0, 1.5]], spacing_m: -1}\n")
    with pytest.raises(ValueError, match=r"ray_traced\.track\.spacing_m:"):
        load_data_config(p)
    p.write_text("source: ray_traced\nray_traced: {scene: atlantis, bs_position_m: [0, 0, 10], "
                 "area: {corners_m: [[0, 0], [1, 1]]}}\n")
    with pytest.raises(ValueError, match=r"ray_traced\.scene:.*munich"):
        load_data_config(p)
    p.write_text("source: ray_traced\nray_traced: {scene: munich, bs_position_m: [0, 0, 10], "
                 "area: {corners_m: [[5, 0], [1, 1]]}}\n")
    with pytest.raises(ValueError, match=r"ray_traced\.area\.corners_m:.*xmin < xmax"):
        load_data_config(p)
    p.write_text("source: ray_traced\nray_traced: {scene: munich, bs_position_m: [0, 0, 10]}\n")
    with pytest.raises(ValueError, match="exactly one sampling mode"):
        load_data_config(p)
    p.write_text("source: ray_traced\nnum_samples: 5\nray_traced: {scene: munich, bs_position_m: [0, 0, 10], "
                 "track: {waypoints_m: [[0, 0, 1.5], [10, 0, 1.5]], spacing_m: 1}}\n")
    with pytest.raises(ValueError, match="disagrees with ray_traced.track.*11 positions"):
        load_data_config(p)
    p.write_text("source: cdl_track\nnum_samples: 5\n")
    with pytest.raises(ValueError, match="track_spacing_m goes with"):
        load_data_config(p)
    p.write_text("source: cdl_track\ntrack_spacing_m: 0.1\nue_speed_kmh: 0\n")
    with pytest.raises(ValueError, match="ue_speed_kmh must be > 0"):
        load_data_config(p)
    p.write_text("source: cdl\nray_traced: {scene: munich, bs_position_m: [0, 0, 10], area: {corners_m: [[0, 0], [1, 1]]}}\n")
    with pytest.raises(ValueError, match="go with \\(and only with\\) source: ray_traced"):
        load_data_config(p)


def test_load_track_refuses_an_area_dataset(tmp_path):
    generate_dataset(CsiDataConfig(source="cdl", num_samples=2, **SMALL), tmp_path / "d")
    with pytest.raises(ValueError, match="not a track dataset"):
        load_track(tmp_path / "d")


def test_import_sionna_stays_lazy():
    """sionna-rt's sionna/__init__.py imports drjit on `import sionna`; drjit loaded after TensorFlow aborts the
    process at exit, so the lazy __init__ of sionna-no-rt must be the installed one (`make install` restores it)."""
    code = "import sys, sionna.phy; print('drjit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", "sionna/__init__.py imports sionna.rt: run `make install` (see the Makefile)"
