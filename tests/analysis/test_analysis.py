"""analysis: loaders (dtypes, sweep parameters), metrics against the engine's own counts and
closed forms, mean/CI, and the HTML report of a run and of a sweep."""
from __future__ import annotations

import base64
import copy
import html
import json
import re
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

import analysis
from analysis.report import write_report
from simulator.engine import Simulation
from tests.conftest import TINY

T_975_DF2 = 4.302652729911275      # Student t 97.5 % quantile, 2 degrees of freedom


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Two UEs, HARQ max 2 at a 30 % BLER target (so TBs fail), an online BLER predictor (updates)."""
    from simulator.loader import validate_data

    data = copy.deepcopy(TINY)
    data.update(duration_s=0.5, ues=[{"id": 0}, {"id": 3, "mobility": {"model": "linear", "speed_kmh": 60}}])
    data["harq"]["max_transmissions"] = 2
    data["link_adaptation"] = {"olla": {"bler_target": 0.3, "step_up_db": 1.0},
                               "backoff": {"kind": "cqi_tune", "tau_bler": 0.9}}
    data["models"] = {"bler_predictor": {"type": "ff_bler", "online": {"delta": 0.3}}}
    out = tmp_path_factory.mktemp("run") / "tiny"
    Simulation(validate_data(data), out).run()
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """channel.profile x seed on an in-process Dask client (threads: quick; the CLI uses processes)."""
    from dask.distributed import Client

    from simulator.sweep.runner import run_sweep
    from simulator.sweep.spec import read_sweep

    tmp = tmp_path_factory.mktemp("sweep")
    (tmp / "base.yaml").write_text(yaml.safe_dump(TINY))
    (tmp / "sweep.yaml").write_text(yaml.safe_dump({
        "base": "base.yaml", "set": {"duration_s": 0.3},
        "grid": {"channel.profile": ["C", "B"], "seed": [1, 2, 3]}, "output": {"dir": str(tmp / "out")}}))
    with warnings.catch_warnings():     # "port 8787 in use" when another Dask cluster runs on this machine
        warnings.simplefilter("ignore")
        with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as client:
            res = run_sweep(read_sweep(tmp / "sweep.yaml"), client=client)
    assert res.ok and len(res.complete) == 6
    return tmp / "out"


def test_load_run_dtypes_and_metrics_equal_the_engine_summary(run_dir):
    logs = analysis.load_run(run_dir)
    summary = json.loads((run_dir / "manifest.json").read_text())["summary"]
    s = logs.slots
    assert s.t_us.dtype == np.int64 and s.t_s.dtype == np.float64 and (s.t_s == s.t_us / 1e6).all()
    assert isinstance(s.receiver.dtype, pd.CategoricalDtype) and isinstance(s.point.dtype, pd.CategoricalDtype)
    assert isinstance(logs.updates.model.dtype, pd.CategoricalDtype) and logs.params == []
    assert list(s.columns[:3]) == ["point", "t_us", "t_s"] and set(s.ue) == {0, 3}
    assert logs.kind == "run" and logs.points.status.tolist() == ["complete"]

    tput = analysis.throughput(s, duration_s=logs.duration_s)
    assert list(tput.ue) == [0, 3]
    assert tput.throughput_mbps.mean() == pytest.approx(summary["throughput_mbps"], rel=1e-12)
    assert analysis.throughput(s).throughput_mbps.mean() == pytest.approx(summary["throughput_mbps"], rel=1e-12)
    b = analysis.bler(s, logs.max_transmissions, by=[])
    assert len(b) == 1
    assert b.first_tx_bler[0] == pytest.approx(summary["first_tx_bler"], rel=1e-12)
    assert b.residual_bler[0] == pytest.approx(summary["residual_bler"], rel=1e-12)
    assert b.mean_mcs[0] == pytest.approx(summary["mean_mcs"], rel=1e-12)
    assert 0 < b.residual_bler[0] < b.first_tx_bler[0]

    w = analysis.throughput(s, window_s=0.1)
    assert sorted(w.t_s.unique()) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert w.delivered_bits.sum() == s.delivered_bits.sum()
    assert (w.throughput_mbps == w.delivered_bits / 0.1 / 1e6).all()

    upd = analysis.update_stats(logs.updates)
    assert upd.n_updates.sum() == len(logs.updates) > 0 and set(upd.model) == {"ff_bler"}
    err = analysis.bler_prediction_error(logs.periods)
    both = logs.periods.dropna(subset=["bler_predicted", "bler_observed"])
    assert err.n.sum() == len(both) > 0
    assert (err.mean_abs_error * err.n).sum() == pytest.approx(
        (both.bler_predicted - both.bler_observed).abs().sum(), rel=1e-6)


def test_load_sweep_params_as_columns_and_mean_ci_over_seeds(sweep_dir):
    logs = analysis.load_sweep(sweep_dir)
    assert logs.params == ["channel.profile", "seed"]
    s = logs.slots
    assert isinstance(s["channel.profile"].dtype, pd.CategoricalDtype)
    assert list(s["channel.profile"].cat.categories) == ["C", "B"]       # sweep order, not alphabetical
    assert s.seed.dtype == np.int64 and len(s) == 6 * 600
    assert s.groupby("point", observed=True).size().tolist() == [600] * 6

    tput = analysis.throughput(s, duration_s=logs.duration_s)
    assert list(tput.columns[:4]) == ["channel.profile", "seed", "point", "ue"]
    summaries = {r.point: r.throughput_mbps for r in logs.points.itertuples()}
    for r in tput.itertuples():
        assert r.throughput_mbps == pytest.approx(summaries[r.point], rel=1e-12)
    ci = analysis.mean_ci(tput, "throughput_mbps")                        # over seeds, per profile
    assert ci["channel.profile"].astype(str).tolist() == ["C", "B"] and (ci.n == 3).all()
    for r in ci.itertuples():
        vals = tput[tput["channel.profile"] == r[1]].throughput_mbps.to_numpy()
        half = T_975_DF2 * vals.std(ddof=1) / np.sqrt(3)
        assert (r.mean, r.ci_low, r.ci_high) == pytest.approx((vals.mean(), vals.mean() - half, vals.mean() + half))

    # a point that did not complete is listed, not loaded (unless asked)
    broken = sweep_dir.parent / "broken"
    shutil.copytree(sweep_dir, broken)
    man = broken / "profile=B,seed=2" / "manifest.json"
    man.write_text(json.dumps({**json.loads(man.read_text()), "status": "running"}))
    part = analysis.load_sweep(broken)
    assert "profile=B,seed=2" not in set(part.slots.point) and len(part.slots) == 5 * 600
    assert part.points.set_index("point").status["profile=B,seed=2"] == "running"
    assert len(analysis.load_sweep(broken, statuses=("complete", "running")).slots) == 6 * 600


def test_mean_ci_known_answer_and_single_sample():
    df = pd.DataFrame({"k": ["a", "a", "a", "b"], "v": [1.0, 2.0, 3.0, 5.0]})
    ci = analysis.mean_ci(df, "v", by=["k"])
    a, b = ci.iloc[0], ci.iloc[1]
    half = T_975_DF2 * 1.0 / np.sqrt(3)
    assert (a.n, a["mean"], a["std"], a.ci_low, a.ci_high) == pytest.approx((3, 2.0, 1.0, 2 - half, 2 + half))
    assert b.n == 1 and b["mean"] == 5.0 and np.isnan(b.ci_low) and np.isnan(b.ci_high)
    overall = analysis.mean_ci(df, "v", by=[])
    assert len(overall) == 1 and overall["mean"][0] == pytest.approx(2.75) and "_all" not in overall.columns


def test_a_parameter_left_null_at_some_points_keeps_their_rows():
    """A swept section that is null at some points (models.csi_codec of ideal/type1 arms beside neural
    ones) is a group of its own, not dropped by pandas' NaN-key rule."""
    df = pd.DataFrame({"codec": [None, None, "c", "c"], "kind": ["ideal", "ideal", "neural", "neural"],
                       "v": [1.0, 3.0, 5.0, 7.0]})
    ci = analysis.mean_ci(df, "v", by=["kind", "codec"])
    assert ci.set_index("kind")["mean"].to_dict() == {"ideal": 2.0, "neural": 6.0}
    slots = pd.DataFrame({"t_us": [0] * 4, "ue": [0, 1, 0, 1], "delivered_bits": [1e6, 1e6, 2e6, 2e6],
                          "codec": [None, None, "c", "c"]})
    assert analysis.cell(slots, duration_s=1.0, by=["codec"]).cell_mbps.tolist() == [4.0, 2.0]


def test_bler_error_csi_rd_and_ber_gap_known_answers():
    periods = pd.DataFrame({"ue": [0, 0, 0, 0], "snr_db": [1.2, 1.7, 3.1, 3.9],
                            "bler_predicted": [0.1, 0.5, np.nan, 0.9], "bler_observed": [0.3, 0.5, 0.2, 0.4],
                            "csi_bits": [100, 100, 100, 100], "csi_nmse_db": [-10.0, -20.0, -10.0, -20.0]})
    err = analysis.bler_prediction_error(periods)
    assert (err.n[0], err.mean_abs_error[0]) == pytest.approx((3, (0.2 + 0.0 + 0.5) / 3))
    binned = analysis.bler_prediction_error(periods, snr_bin_db=2.0)
    assert binned.snr_db.tolist() == [2.0, 4.0] and binned.mean_abs_error.tolist() == pytest.approx([0.1, 0.5])

    updates = pd.DataFrame({"ue": [0, 0], "model": ["csi_codec", "csi_codec"], "update_bits": [150, 50],
                            "compute_us": [10, 30], "loss_before": [1.0, 1.0], "loss_after": [0.5, 0.7]})
    rd = analysis.csi_rd(periods, updates, csi_dimension=32)
    r = rd.iloc[0]
    assert r.n_reports == 4 and r.nmse_db == pytest.approx(10 * np.log10(0.055))
    assert (r.csi_bits_per_report, r.update_bits_per_report, r.total_bits_per_report) == (100, 50, 150)
    assert r.rate_bits_per_dim == pytest.approx(150 / 32)
    assert analysis.csi_rd(periods, updates, model="other").update_bits_per_report[0] == 0
    u = analysis.update_stats(updates)
    assert (u.n_updates[0], u.update_bits[0], u.compute_us_mean[0], u.loss_after_mean[0]) == (2, 200, 20, 0.6)

    slots = pd.DataFrame({"ue": [0] * 4, "snr": [0, 0, 5, 5],
                          "receiver": ["lmmse", "genie_lmmse", "lmmse", "genie_lmmse"],
                          "ber": [0.02, 0.01, 0.004, 0.004]})
    gap = analysis.ber_gap_to_genie(slots, by=["snr"])
    assert gap.receiver.tolist() == ["lmmse", "lmmse"]
    assert gap.ber_gap.tolist() == pytest.approx([0.01, 0.0])
    assert gap.ber_ratio_db.tolist() == pytest.approx([10 * np.log10(2), 0.0])
    with pytest.raises(ValueError, match="no slots with receiver 'genie_lmmse'"):
        analysis.ber_gap_to_genie(slots[slots.receiver == "lmmse"], by=["snr"])


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def test_report_of_a_run_and_of_a_sweep(run_dir, sweep_dir, capsys):
    from simulator.cli import main

    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(run_dir / "report.html")
    page = (run_dir / "report.html").read_text()
    imgs = _images(page)
    assert len(imgs) == 1 and all(i.startswith(b"\x89PNG") for i in imgs)   # throughput over time
    assert (run_dir / "figures" / "throughput_over_time.png").is_file()
    assert (run_dir / "figures" / "throughput_over_time.svg").read_text().lstrip().startswith("<?xml")
    # one fixed SNR: the BLER error vs SNR is a table row, not a plot of a few dots
    assert not (run_dir / "figures" / "bler_error_vs_snr.png").exists()
    assert "<h3>bler_error_vs_snr</h3>" in page and "(a single snr_db, so a table)" in page
    assert "Model updates" in page and "tiny" in page and "&quot;status&quot;: &quot;complete&quot;" in page

    target = sweep_dir.parent / "rep" / "sweep.html"
    assert main(["report", str(sweep_dir), "--out", str(target)]) == 0
    page = target.read_text()
    assert len(_images(page)) == 1                       # no numeric swept parameter besides the seed
    assert "Mean over seeds with 95 % confidence interval" in page and "channel.profile" in page
    assert page.count("<tr>") >= 6 + 4 * 2 + 2            # points, 4 metrics x 2 profiles, headers

    assert main(["report", str(sweep_dir.parent)]) == 2
    assert "neither a run folder" in capsys.readouterr().err
    for name, text in (("list", "[1, 2]"), ("garbage", "{not json"), ("binary", "\udcff")):
        bad = sweep_dir.parent / f"bad_{name}"
        bad.mkdir()
        (bad / "sweep.json").write_bytes(text.encode("utf-8", "surrogateescape"))
        assert main(["report", str(bad)]) == 2
        err = capsys.readouterr().err
        assert "sweep.json: not a JSON object" in err or "sweep.json: unreadable" in err
        assert "Traceback" not in err


def test_figures_one_line_per_group_bands_and_png_svg(tmp_path):
    from analysis import plots

    rd = pd.DataFrame({"scheme": ["b", "b", "a", "a"], "total_bits_per_report": [2.0, 1.0, 1.0, 2.0],
                       "nmse_db": [-12.0, -6.0, -5.0, -10.0]})
    ax = plots.rd_curves(rd, ["scheme"]).axes[0]
    assert [line.get_label() for line in ax.lines] == ["scheme=a", "scheme=b"]
    assert ax.lines[1].get_xdata().tolist() == [1.0, 2.0] and ax.lines[1].get_ydata().tolist() == [-6.0, -12.0]

    samples = pd.DataFrame({"update_interval_ms": [10, 10, 20, 20, 40], "v": [1.0, 3.0, 2.0, 4.0, 5.0]})
    ci = analysis.mean_ci(samples, "v", by=["update_interval_ms"])
    fig = plots.metric_vs_param(ci, "update_interval_ms", (), "throughput (Mbit/s)")
    ax = fig.axes[0]
    assert ax.lines[0].get_ydata().tolist() == [2.0, 3.0, 5.0] and len(ax.collections) == 1    # one band
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].max() == pytest.approx(ci.ci_high.max())     # upper edge at the widest interval
    paths = plots.save_figure(fig, tmp_path / "figs" / "v_vs_interval")
    assert [p.name for p in paths] == ["v_vs_interval.png", "v_vs_interval.svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and "<svg" in paths[1].read_text()


def test_cell_metrics_known_answer():
    # three UEs delivering 1, 2 and 5 Mbit over 1 s: cell 8, Jain 64 / (3 * 30), p5 by linear interpolation
    slots = pd.DataFrame({"t_us": [0, 0, 0], "ue": [0, 1, 2], "delivered_bits": [1e6, 2e6, 5e6]})
    out = analysis.cell(slots, duration_s=1.0, by=[])
    row = out.iloc[0]
    assert row.cell_mbps == pytest.approx(8.0) and row.jain == pytest.approx(64 / 90)
    assert row.ue_p5_mbps == pytest.approx(1.0 + 0.1 * 1.0) and row.max_share == pytest.approx(5 / 8)
    assert row.num_ues == 3


def test_report_of_a_scheduled_cell_has_its_cell_table(tmp_path):
    from analysis.report import tables
    from simulator.loader import validate_data

    data = copy.deepcopy(TINY)
    data.update(duration_s=0.2, scheduler={"kind": "round_robin"},
                ues=[{"id": 0}, {"id": 3, "mobility": {"model": "linear", "speed_kmh": 60}}])
    summary = Simulation(validate_data(data), tmp_path / "cell").run()
    cell_table = tables(analysis.load(tmp_path / "cell"))["Cell"]
    assert cell_table["cell_mbps"].iloc[0] == pytest.approx(summary.cell_throughput_mbps, rel=1e-6)
    assert cell_table["jain"].iloc[0] == pytest.approx(summary.jain_index, rel=1e-6)


def test_confidence_intervals_are_clipped_to_the_metric_range():
    from analysis.metrics import mean_ci

    df = pd.DataFrame({"residual_bler": [0.0, 0.0, 0.03], "x": [1.0, 2.0, 3.0]})
    free = mean_ci(df, "residual_bler", by=[], bounds=(-np.inf, np.inf)).iloc[0]
    half = T_975_DF2 * df.residual_bler.std() / np.sqrt(3)
    assert free.ci_low == pytest.approx(0.01 - half) and free.ci_low < 0          # the unclipped t interval
    clipped = mean_ci(df, "residual_bler", by=[]).iloc[0]
    assert clipped.ci_low == 0.0 and clipped.ci_high == pytest.approx(0.01 + half)  # a BLER is never below 0
    assert mean_ci(df, "x", by=[]).iloc[0].ci_low == pytest.approx(2.0 - T_975_DF2 / np.sqrt(3))   # no range


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no headless Chromium on this machine")
def test_the_report_in_a_real_browser(sweep_dir, tmp_path):
    """Headless Chromium at 600 px: the page itself never scrolls sideways, a wide table scrolls inside
    its box, and a screenshot of the page is drawn (not blank)."""
    from PIL import Image

    page = write_report(sweep_dir, tmp_path / "report.html")
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", """<script>
      const boxes = [...document.querySelectorAll('.scroll')];
      document.body.setAttribute('data-probe', JSON.stringify({
        page_overflow: document.documentElement.scrollWidth - window.innerWidth,
        boxes: boxes.length, scrolling: boxes.filter(b => b.scrollWidth > b.clientWidth).length}));
    </script></body>"""))
    args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=600,900"]
    dom = subprocess.run([*args, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    got = json.loads(html.unescape(dom.split("data-probe=\"", 1)[1].split("\"", 1)[0]))
    assert got["page_overflow"] <= 0 and got["boxes"] >= 2 and got["scrolling"] >= 1, got
    shot = tmp_path / "shot.png"
    subprocess.run([*args, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("L"))
    assert img.shape == (900, 600) and (img < 128).mean() > 0.005        # text and figures drawn
