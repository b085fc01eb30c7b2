"""csi_rs: measure at each CSI-RS occasion, report a CQI after the UE's processing delay, and
close each period with its observed BLER (which a BLER predictor may learn from)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import simpy

from simulator.bler_features import bler_features
from simulator.feedback import Message
from simulator.link_adaptation.backoff import cqi_tune
from simulator.phy.base import per_re_sinr


@dataclass
class _Occasion:
    t0: int
    period: int
    snr_db: float
    sinr_eff_db: float
    sinr_error_db: float
    cqi_table: int
    cqi: int
    report: Message
    features: np.ndarray | None
    bler_predicted: float
    csi: object | None = None          # the CsiReport riding in the report message (neural CSI feedback)


def csi_rs_process(env: simpy.Environment, ue, link, feedback, *, period_us: int, report_delay_us: int,
                   slot_us: int, duration_us: int, report_bits: int, rec, trace: list | None = None,
                   predictor=None, backoff=None, subcarrier_spacing_hz: float = 30e3, num_rbs: int = 0,
                   num_dmrs_symbols: int = 0, explore_max_offset: int = 0, rng: np.random.Generator | None = None,
                   sinr_error_db: tuple[float, float] = (0.0, 0.0), error_rng: np.random.Generator | None = None,
                   csi=None):
    """One occasion every ``period_us`` from t = 0; a ``periods`` row when each period ends.

    At each occasion, in this order: measure and choose the CQI (with the predictor's current
    weights, and CQI-Tune if ``backoff``), then close the previous period: its observed BLER
    goes to ``predictor.observe``, whose update is logged as applied after its compute time,
    i.e. after this occasion's prediction.

    ``sinr_error_db`` = (bias, std): the UE measures the SNR off by bias + std * N(0, 1) dB
    (drawn from ``error_rng`` at each occasion); the CQI and the BLER features use the measured
    value, the PDSCH keeps the true channel.

    ``csi`` (a ``CsiFeedback``): the report message also carries the UE's compressed CSI, which
    the gNB decodes when the message arrives.
    """
    prev: _Occasion | None = None
    period = 0
    while env.now < duration_us:
        bias, std = sinr_error_db
        err_db = bias + std * float(error_rng.standard_normal()) if std else bias
        occ = _measure(env, ue, link, feedback, period, slot_us, report_bits, report_delay_us, trace, predictor,
                       backoff, subcarrier_spacing_hz, num_rbs, num_dmrs_symbols, explore_max_offset, rng, err_db,
                       csi)
        if prev is not None:
            _close(prev, env.now, ue, link, rec, predictor)
        prev = occ
        period += 1
        yield env.timeout(min(occ.t0 + period_us, duration_us) - occ.t0)
    if prev is not None:
        _close(prev, env.now, ue, link, rec, predictor)


def _measure(env, ue, link, feedback, period, slot_us, report_bits, report_delay_us, trace, predictor, backoff,
             scs_hz, num_rbs, num_dmrs, explore_max_offset, rng, err_db: float, csi=None) -> _Occasion:
    t0 = env.now
    slot = t0 // slot_us
    snr_db = float(ue.snr_db[slot])
    measured_db = snr_db + err_db                                   # what the UE believes
    cqi_table, sinr_eff_db = link.cqi_mapper.select(per_re_sinr(ue.channel.gain_slot(slot), measured_db))
    cqi, features, bler_pred = cqi_table, None, math.nan
    if explore_max_offset:
        # data collection: a random CQI around the table's (the features keep the reported one)
        cqi = int(np.clip(cqi_table + rng.integers(-explore_max_offset, explore_max_offset + 1), 1, 15))
    if predictor is not None or explore_max_offset:
        nxt = min(slot + 1, len(ue.snr_db) - 1)
        features = bler_features(ue.channel.cfr_slot(slot), ue.channel.cfr_slot(nxt), measured_db, slot_us * 1e-6,
                                 scs_hz, link.pdsch_sinr_db, cqi, num_rbs, num_dmrs)
    if predictor is not None:
        if backoff is not None and backoff.kind == "cqi_tune":
            cqi, _ = cqi_tune(cqi, lambda c: float(predictor.predict(features, np.array([c]))[0]),
                              backoff.tau_bler, backoff.cqi_min)
        bler_pred = float(predictor.predict(features, np.array([cqi]))[0])
    report = Message("cqi", ue.id, report_bits, cqi, created_us=t0)
    csi_report = None
    if csi is not None:
        csi_report = csi.on_occasion(float(ue.mobility.distance_m([t0 * 1e-6])[0]))
        report.bits += csi_report.bits
        report.on_arrival = lambda m, r=csi_report: csi.on_report_arrival(r, m.arrival_us)
    if trace is not None:
        trace.append((t0, "csi_rs", ue.id, period, cqi))
    if report_delay_us:
        env.timeout(report_delay_us).callbacks.append(lambda _ev, m=report: _send(feedback, m, trace))
    else:
        _send(feedback, report, trace)
    return _Occasion(t0, period, snr_db, sinr_eff_db, err_db, cqi_table, cqi, report, features, bler_pred, csi_report)


def _close(occ: _Occasion, t_end: int, ue, link, rec, predictor) -> None:
    n_ack, n_nack = link.close_period()
    n = n_ack + n_nack
    bler_obs = n_nack / n if n else math.nan
    fine_tuned = False
    if predictor is not None and n:
        t_wall = time.perf_counter_ns()
        upd = predictor.observe(occ.features, occ.cqi, bler_obs, occ.bler_predicted)
        if upd is not None:
            fine_tuned = True
            compute_us = max(upd.compute_us, (time.perf_counter_ns() - t_wall) // 1000)
            rec.append("updates", {
                "t_us": t_end, "ue": ue.id, "model": upd.model, "trigger": upd.trigger,
                "trigger_value": upd.trigger_value, "compute_us": compute_us, "state_bytes": upd.state_bytes,
                "update_bits": upd.update_bits, "applied_t_us": t_end + compute_us,
                "loss_before": upd.loss_before, "loss_after": upd.loss_after,
            })
    row = {
        "t_us": occ.t0, "t_end_us": t_end, "ue": ue.id, "period": occ.period, "snr_db": occ.snr_db,
        "sinr_eff_db": occ.sinr_eff_db, "sinr_error_db": occ.sinr_error_db, "cqi_table": occ.cqi_table, "cqi_reported": occ.cqi,
        "report_arrival_t_us": occ.report.arrival_us, "bler_predicted": occ.bler_predicted,
        "bler_observed": bler_obs, "n_ack": n_ack, "n_nack": n_nack, "fine_tuned": fine_tuned,
        **_csi_columns(occ),
        "distance_m": float(ue.mobility.distance_m([occ.t0 * 1e-6])[0]),
        "features": None if occ.features is None else occ.features.tolist(),
    }
    if occ.csi is not None and occ.csi.pending:
        occ.csi.row = row       # still on the link: CsiFeedback writes the row when the gNB has decoded it
    else:
        rec.append("periods", row)


def _csi_columns(occ: _Occasion) -> dict:
    if occ.csi is None:
        return {"csi_bits": occ.report.bits, "csi_bits_estimated": float(occ.report.bits), "csi_nmse_db": math.nan}
    return {"csi_bits": occ.csi.bits, "csi_bits_estimated": occ.csi.bits_estimated, "csi_nmse_db": occ.csi.nmse_db}


def _send(feedback, msg: Message, trace) -> None:
    if trace is not None:
        trace.append((feedback.env.now, "report_sent", msg.ue, msg.kind, msg.payload))
    feedback.send(msg)
