"""Neural CSI reports on a gNB array: the codec compresses the UE's own measured channel, the gNB
precodes with what it decodes. Known answers recomputed from the channel on the logged samples."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.csi.codec_grid import CodecGrid, grid_misfit
from simulator.engine import Simulation, build_ue, seeds_for
from simulator.link_adaptation.tables import bler_table
from simulator.channel.snr import SnrModel
from simulator.loader import ConfigError
from tests.models.csi_codec.conftest import save_tiny_codec


@pytest.fixture(scope="module")
def tiny_codec(tmp_path_factory) -> str:
    """An 8x8 conv_csi codec (8 gNB antennas, 8 subcarriers)."""
    return save_tiny_codec(tmp_path_factory.mktemp("codec") / "tiny.json")


def _neural(make_scenario, ckpt: str, scheme: str = "none", **extra):
    # 2x4 array (8 ports), 8 PRBs in 8 one-PRB subbands: the codec's 8 subcarriers, one per subband
    return make_scenario({"duration_s": 0.3, "carrier.num_prbs": 8, "gnb": {"antenna_rows": 2, "antenna_cols": 4},
                          "channel": {"model": "cdl", "profile": "A", "delay_spread_ns": 100},
                          "csi_rs.report": {"kind": "neural", "subband_prbs": 1},
                          "models.csi_codec": {"checkpoint": ckpt, "online": {"scheme": scheme}}, **extra})


def test_grid_samples_every_subband_and_normalises_each_ue_antenna():
    grid = CodecGrid(8, 8, 8, 8, 1)
    assert grid.sample_sc.tolist() == [6, 18, 30, 42, 54, 66, 78, 90]     # floor((k + 1/2) 96 / 8)
    assert grid.subband_of_sample.tolist() == list(range(8))
    rng = np.random.default_rng(0)
    h = (rng.normal(size=(2, 8, 96)) + 1j * rng.normal(size=(2, 8, 96))) * np.array([1.0, 30.0])[:, None, None]
    x = grid.to_codec(h)
    assert x.shape == (2, 8, 8, 2) and x.dtype == np.float32
    np.testing.assert_allclose((x ** 2).sum(axis=-1).mean(axis=(1, 2)), [1.0, 1.0], rtol=1e-5)
    # one UE antenna and one sample per subband: the precoder of an exact reconstruction is h* / |h|
    w = grid.precoder(x[:1])
    h0 = h[0][:, grid.sample_sc]                                            # [gnb, num_sc]
    mrt = (h0 / np.linalg.norm(h0, axis=0)).T.conj()                        # [S, gnb]: w = h^* / |h|
    np.testing.assert_allclose(np.abs(np.sum(mrt.conj() * w, axis=1)), 1.0, atol=1e-5)
    assert grid_misfit(8, 8, 16, 8, 1) == "the codec's grid has 8 antennas, the gNB array 16 ports"
    assert "subband(s) [0, 2, 4, 6" in grid_misfit(8, 8, 8, 16, 1)         # 8 samples over 16 subbands: 12, 36, ...


def test_logged_nmse_sgcs_and_loss_match_the_closed_forms(make_scenario, tiny_codec, tmp_path):
    """Every period: the NMSE of the codec's reconstruction of the measured channel, the SGCS of the
    precoder derived from it against the subband's dominant right singular vector (numpy SVD), and the
    loss 10 log10(sum |h|^2 / sum |h^H w|^2) (one UE antenna), recomputed here from the channel and a
    fresh frozen codec; and every slot after a report precodes with that report's reconstruction."""
    from models.csi_codec.config import CsiOnlineConfig
    from models.csi_codec.online import OnlineCsiCodec

    sc = _neural(make_scenario, tiny_codec)
    Simulation(sc, tmp_path / "run").run()
    periods = pd.read_parquet(tmp_path / "run" / "periods.parquet")
    slots = pd.read_parquet(tmp_path / "run" / "slots.parquet")
    ue, _ = build_ue(sc, sc.ues[0], bler_table(1, 8, 2), SnrModel(sc.snr, sc.carrier, sc.gnb), seeds_for(sc)[0]["channel"])
    codec = OnlineCsiCodec(tiny_codec, CsiOnlineConfig(), np.random.default_rng(0))
    grid = CodecGrid(8, 8, 8, 8, 1)
    precoders = []
    assert len(periods) == 30
    for row in periods.itertuples():
        slot = row.t_us // sc.carrier.slot_us
        h = ue.channel.cfr_slot(slot)                                       # [1, 8, 96]
        rep = codec.report(grid.to_codec(h))
        x_hat = codec.decode(rep)
        nmse = 10 * np.log10(np.sum((rep.x - x_hat) ** 2) / np.sum(rep.x ** 2))
        assert row.csi_nmse_db == pytest.approx(nmse, abs=1e-4)
        assert row.csi_bits == rep.bits == 8 * len(rep.data)
        w = grid.precoder(x_hat)                                            # [8 subbands, 8]
        h_sb = h[0].T.reshape(8, 12, 8)                                     # [subband, sc, gnb]: rows h_sc^T
        v = np.linalg.svd(h_sb)[2][:, 0, :].conj()                          # top right singular vector
        per_subband = np.abs(np.sum(v.conj() * w, axis=1)) ** 2
        assert row.csi_sgcs == pytest.approx(np.mean(per_subband), abs=1e-5)
        assert row.csi_sgcs_min == pytest.approx(np.min(per_subband), abs=1e-5)
        assert row.csi_model_version == 0                                    # frozen: the checkpoint's
        hw = np.einsum("sg,sg->s", h_sb.reshape(96, 8), np.repeat(w, 12, axis=0))     # h^T w per subcarrier
        loss = 10 * np.log10(np.sum(np.abs(h[0]) ** 2) / np.sum(np.abs(hw) ** 2))
        assert row.csi_precoding_loss_db == pytest.approx(loss, abs=1e-4)
        precoders.append((row.report_arrival_t_us, w))
    # the gNB precodes each slot with the reconstruction of the last report that has arrived
    checked = 0
    for s in slots.itertuples():
        held = [w for t, w in precoders if t <= s.t_us]
        if not held:
            assert s.precoding_gain_db == 0.0
            continue
        slot = s.t_us // sc.carrier.slot_us
        hw = ue.channel.precoded_slot(slot, held[-1], 12)
        gain = (np.abs(hw) ** 2).sum(axis=0).mean() / ue.channel.mean_power_per_gnb_antenna(slot)
        assert s.precoding_gain_db == pytest.approx(10 * np.log10(gain), abs=1e-4)
        checked += 1
    assert checked > 500


def test_full_model_fine_tunes_on_the_measured_channel_and_pays_in_feedback_bits(make_scenario, tiny_codec,
                                                                                  tmp_path):
    sc = _neural(make_scenario, tiny_codec, "full_model", duration_s=2.0,
                 **{"models.csi_codec.online": {"scheme": "full_model", "interval_m": 4, "samples": 64, "steps": 30,
                                                "batch": 16, "learning_rate": 3e-3, "ue_gflops": 10}})
    Simulation(sc, tmp_path / "ft").run()
    periods = pd.read_parquet(tmp_path / "ft" / "periods.parquet")
    updates = pd.read_parquet(tmp_path / "ft" / "updates.parquet")
    applied = updates[updates.applied_t_us >= 0]
    assert len(applied) >= 2 and (applied.update_bits > 0).all()
    # the reports of the measured channel get better once the updates have arrived
    first = applied.applied_t_us.min()
    before = periods[periods.t_us < updates.t_us.min()].csi_nmse_db.mean()
    after = periods[periods.t_us > first].csi_nmse_db.mean()
    assert after < before - 1.0, (before, after)
    # each report names the decoder version it was encoded for: 0 before the first update took effect, one
    # more per update applied by the time it was encoded, never decreasing
    version = periods.sort_values("t_us").csi_model_version
    assert (version.diff().dropna() >= 0).all() and version.iloc[0] == 0
    assert version.max() == len(applied[applied.applied_t_us < periods.t_us.max()])
    # a report queued behind an update waits for its bits
    late = periods.report_arrival_t_us - periods.t_us
    assert late.max() > 2000 + applied.update_bits.min() / (sc.feedback.capacity_kbps * 1e3) * 1e6 * 0.5


def test_bad_neural_inputs_name_the_field(make_scenario, tiny_codec):
    with pytest.raises(ConfigError, match=r"models.csi_codec.checkpoint: the codec's grid has 8 antennas, "
                                          r"the gNB array 16 ports"):
        _neural(make_scenario, tiny_codec, gnb={"antenna_rows": 2, "antenna_cols": 8})
    with pytest.raises(ConfigError, match=r"models.csi_codec.checkpoint: its 8 subcarriers over 192 leave "
                                          r"precoding subband\(s\) \[0, 2"):
        _neural(make_scenario, tiny_codec, **{"carrier.num_prbs": 16})
    with pytest.raises(ConfigError, match=r"csi_rs.report.kind: neural reports need a gNB array"):
        _neural(make_scenario, tiny_codec, gnb={"antenna_rows": 1, "antenna_cols": 1})
    with pytest.raises(ConfigError, match=r"csi_rs.report.kind: neural needs models.csi_codec"):
        make_scenario({"gnb": {"antenna_cols": 4}, "csi_rs.report": {"kind": "neural"}})
    with pytest.raises(ConfigError, match=r"models.csi_codec.track: neural reports compress the UE's measured"):
        _neural(make_scenario, tiny_codec, **{"models.csi_codec": {"checkpoint": tiny_codec, "track": "t"}})
    with pytest.raises(ConfigError, match=r"models.csi_codec: with a gNB array the codec's reports are the CSI"):
        _neural(make_scenario, tiny_codec, **{"csi_rs.report": {"kind": "ideal"}})
    with pytest.raises(ConfigError, match=r"models.csi_codec.track: required with one gNB antenna"):
        make_scenario({"models.csi_codec": {"checkpoint": tiny_codec}})


def test_two_ue_antennas_send_two_matrices_and_two_layers_follow_the_reported_rank(make_scenario, tiny_codec,
                                                                                   tmp_path):
    one = _neural(make_scenario, tiny_codec, **{"snr": {"model": "fixed", "snr_db": 25}})
    two = _neural(make_scenario, tiny_codec, **{"snr": {"model": "fixed", "snr_db": 25}, "phy.num_ue_antennas": 2,
                                                "csi_rs.report": {"kind": "neural", "subband_prbs": 1, "max_rank": 2}})
    Simulation(one, tmp_path / "one").run()
    Simulation(two, tmp_path / "two").run()
    p1, p2 = (pd.read_parquet(tmp_path / d / "periods.parquet") for d in ("one", "two"))
    s2 = pd.read_parquet(tmp_path / "two" / "slots.parquet")
    assert p2.csi_bits.mean() > 1.5 * p1.csi_bits.mean()                   # one matrix per UE antenna
    assert set(p2["rank"]) <= {1, 2} and (p2["rank"] == 2).any()
    # each slot's layers are those of the last report that had arrived
    for s in s2[s2.tx_round == 1].itertuples():
        arrived = p2[p2.report_arrival_t_us <= s.t_us]
        assert s.layers == (1 if arrived.empty else arrived["rank"].iloc[-1])
