"""A gNB array, precoded from the CSI the UE reports (ideal or Type I): known answers end to end."""
from __future__ import annotations

import pandas as pd
import pytest

from simulator.engine import Simulation
from simulator.loader import ConfigError


def _array_scenario(make_scenario, kind: str, rows: int, cols: int, **extra):
    ues = [{"id": u, "mobility": {"model": "static", "position_m": [10.0 + u, 0, 1.5]}} for u in range(16)]
    return make_scenario({"duration_s": 0.05, "carrier.num_prbs": 52, "csi_rs.period_ms": 10,
                          "csi_rs.report": {"kind": kind, "subband_prbs": 1}, "gnb": {"antenna_rows": rows,
                                                                                       "antenna_cols": cols},
                          "channel": {"model": "tdl", "profile": "A", "delay_spread_ns": 30}, "ues": ues, **extra})


def _run(sc, out) -> tuple[pd.DataFrame, pd.DataFrame]:
    Simulation(sc, out).run()
    return pd.read_parquet(out / "slots.parquet"), pd.read_parquet(out / "periods.parquet")


def test_ideal_csi_precoding_gains_n_t_on_iid_rayleigh(make_scenario, tmp_path):
    """TDL (i.i.d. Rayleigh across the 8 gNB antennas), static UEs, one UE antenna, a precoder per PRB
    (nearly flat at 30 ns delay spread): the dominant-eigenvector precoder is maximum-ratio
    transmission, |h^H w|^2 = ||h||^2 = N_t x the mean power of one antenna of the same realisation,
    so the logged gain is 10 log10(N_t), less what the PRB's frequency selectivity costs. Type I's DFT
    beams, fixed directions, gain less (~3x on this unstructured channel)."""
    slots, periods = _run(_array_scenario(make_scenario, "ideal", 1, 8), tmp_path / "ideal")
    precoded = slots[slots.t_us >= periods.report_arrival_t_us.min()]
    gain = 10 ** (precoded.groupby("ue").precoding_gain_db.first() / 10)      # static: one draw per UE
    assert len(gain) == 16 and (gain > 7.9).all() and (gain <= 8 * (1 + 1e-5)).all(), gain
    t1_slots, t1_periods = _run(_array_scenario(make_scenario, "type1", 1, 8), tmp_path / "type1")
    t1 = 10 ** (t1_slots[t1_slots.t_us >= t1_periods.report_arrival_t_us.min()]
                .groupby("ue").precoding_gain_db.first() / 10)
    assert 2 < t1.mean() < 0.75 * gain.mean()                           # best of 32 DFT beams: ~3x here
    # Type I on 8 single-polarised ports (N1, N2) = (8, 1): i1,1 has ceil(log2(8 * 4)) = 5 bits, no i2, no RI
    assert (t1_periods.csi_bits == 4 + 5).all() and (periods.csi_bits == 4).all()
    # the precoding shows up in the SINR the CQI is chosen for
    assert precoded.sinr_eff_db.mean() > slots[slots.t_us < periods.report_arrival_t_us.min()].sinr_eff_db.mean() + 5


def test_bad_arrays_name_the_field(make_scenario):
    with pytest.raises(ConfigError, match=r"gnb: 3 rows x 3 cols \(single\) has no Type I codebook"):
        _array_scenario(make_scenario, "type1", 3, 3)
    _array_scenario(make_scenario, "ideal", 3, 3)                      # ideal CSI precodes any array
    with pytest.raises(ConfigError, match=r"models.csi_codec: with a gNB array the codec's reports are"):
        make_scenario({"gnb": {"antenna_cols": 4}, "models.csi_codec": {"checkpoint": "x.json", "track": "t"}})


def test_etype2_end_to_end_between_type1_and_ideal(make_scenario, tmp_path):
    """eType II on the same channels (8 single-polarised ports, 52 subbands of one PRB are too many for
    it: 13 subbands of 4 PRBs): its logged bits are the CQI's plus 38.212's eType II count for the PMI
    (> Type I's), and its precoding gain lies between Type I's and ideal CSI's."""
    gains, bits = {}, {}
    for kind in ("ideal", "type1", "etype2"):
        sc = _array_scenario(make_scenario, kind, 1, 8, **{"csi_rs.report.subband_prbs": 4,
                                                            "csi_rs.report.param_combination": 6})
        slots, periods = _run(sc, tmp_path / kind)
        first = slots.ue.map(periods.groupby("ue").report_arrival_t_us.min())     # each UE's first report
        precoded = slots[slots.t_us >= first]                                        # (eType II's come later)
        gains[kind] = (10 ** (precoded.groupby("ue").precoding_gain_db.first() / 10)).mean()
        bits[kind] = periods.csi_bits
        assert (periods.csi_model_version == -1).all() and (periods.csi_sgcs_min <= periods.csi_sgcs + 1e-6).all()
    assert gains["type1"] < gains["etype2"] < gains["ideal"], gains
    assert (bits["etype2"] > bits["type1"].max()).all() and bits["etype2"].nunique() >= 1


def test_bad_etype2_settings_name_the_field(make_scenario):
    with pytest.raises(ConfigError, match=r"csi_rs.report.subband_prbs: eType II reports at most 19 subbands"):
        _array_scenario(make_scenario, "etype2", 1, 8)                                   # 52 subbands of 1 PRB
    with pytest.raises(ConfigError, match=r"csi_rs.report.param_combination: 7 \(L = 6\) needs 32 ports"):
        _array_scenario(make_scenario, "etype2", 1, 8, **{"csi_rs.report.subband_prbs": 4,
                                                         "csi_rs.report.param_combination": 7})
    with pytest.raises(ConfigError, match=r"csi_rs.report.param_combination"):
        _array_scenario(make_scenario, "etype2", 1, 8, **{"csi_rs.report.subband_prbs": 4,
                                                         "csi_rs.report.param_combination": 9})
    with pytest.raises(ConfigError, match=r"gnb: 3 rows x 3 cols \(single\) has no eType II codebook"):
        _array_scenario(make_scenario, "etype2", 3, 3, **{"csi_rs.report.subband_prbs": 4})


def test_the_gnb_position_and_power_live_under_gnb(make_scenario):
    with pytest.raises(ConfigError, match=r"snr.gnb_position_m: the gNB's position and power are set under gnb: "
                                          r"\(gnb.position_m\)"):
        make_scenario({"snr": {"model": "pathloss", "gnb_position_m": [0, 0, 25]}})
    near = make_scenario({"snr": {"model": "pathloss"}, "gnb": {"position_m": [0, 0, 25], "tx_power_dbm": 40}})
    assert near.gnb.position_m == (0, 0, 25) and near.gnb.tx_power_dbm == 40


def test_two_layers_on_iid_rayleigh_gain_half_the_array_per_layer(make_scenario, tmp_path):
    """Two UE antennas, max_rank 2, ideal CSI on a nearly flat PRB: the two eigen-layers carry all of
    ||H||_F^2 (lambda_1 + lambda_2), each with half the power, so the mean layer gain over one gNB
    antenna's (||H||_F^2 / N_t) is N_t / 2 (6.0 dB at 8 antennas); high SNR picks rank 2, the
    transport blocks are the two-layer TBS and the layer SINRs decode at a higher rate than one layer."""
    from simulator.link_adaptation.tables import bler_table

    extra = {"phy.num_ue_antennas": 2, "snr": {"model": "fixed", "snr_db": 25},
             "csi_rs.report": {"kind": "ideal", "subband_prbs": 1, "max_rank": 2}}
    slots, periods = _run(_array_scenario(make_scenario, "ideal", 1, 8, **extra), tmp_path / "r2")
    assert (periods["rank"] == 2).all()
    two = slots[slots.layers == 2]
    gain = 10 ** (two.groupby("ue").precoding_gain_db.first() / 10)
    assert len(gain) == 16 and (gain > 3.9).all() and (gain <= 4 * (1 + 1e-5)).all(), gain
    t2 = bler_table(1, 52, 2, num_layers=2).tbs_bits
    assert (two.tbs_bits.values == t2[two.mcs.values]).all()
    one_slots, _ = _run(_array_scenario(make_scenario, "ideal", 1, 8, **{**extra, "csi_rs.report": {
        "kind": "ideal", "subband_prbs": 1, "max_rank": 1}}), tmp_path / "r1")
    assert (one_slots.layers == 1).all()
    assert two.delivered_bits.sum() / len(two) > 1.3 * one_slots[one_slots.t_us >= two.t_us.min()].delivered_bits.mean()
    # at -15 dB one layer carries more information than two (log2(1 + rho l1) > sum log2(1 + rho l_k / 2)): rank 1
    low = {**extra, "snr": {"model": "fixed", "snr_db": -15}}
    _, low_periods = _run(_array_scenario(make_scenario, "ideal", 1, 8, **low), tmp_path / "low")
    assert (low_periods["rank"] == 1).mean() > 0.9


def test_type1_reports_its_rank_with_the_ri_bits(make_scenario, tmp_path):
    from simulator.csi.type1 import WIDEBAND_CQI_BITS, codebook_config, report_bits

    extra = {"phy.num_ue_antennas": 2, "snr": {"model": "fixed", "snr_db": 25},
             "csi_rs.report": {"kind": "type1", "subband_prbs": 4, "max_rank": 2}}
    slots, periods = _run(_array_scenario(make_scenario, "type1", 2, 4, **extra), tmp_path / "t1")
    cb = codebook_config(4, 2, False)
    bits = {r: 4 + report_bits(cb, r, 2, 13, True).total - WIDEBAND_CQI_BITS for r in (1, 2)}
    assert bits[2] != bits[1] and set(periods["rank"]) <= {1, 2}
    assert (periods.csi_bits == periods["rank"].map(bits)).all()
    assert (slots.layers.isin([1, 2])).all()


def test_two_layers_need_two_ue_antennas_and_the_abstraction(make_scenario):
    with pytest.raises(ConfigError, match=r"csi_rs.report.max_rank: 2 layers need two UE antennas"):
        _array_scenario(make_scenario, "ideal", 1, 8, **{"csi_rs.report": {"max_rank": 2}})
    with pytest.raises(ConfigError, match=r"csi_rs.report.max_rank: the neural receiver is one-layer"):
        _array_scenario(make_scenario, "ideal", 1, 8, **{"csi_rs.report": {"max_rank": 2}, "phy.num_ue_antennas": 2,
                                                          "phy.backend": "link_level", "phy.receiver": "neural",
                                                          "models.receiver": {"checkpoint": "x.json"}})
