"""csi_rs: measure at each CSI-RS occasion, report a CQI after the UE's processing delay, and
close each period with its observed BLER (which a BLER predictor may learn from)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from simulator.bler_features import bler_features
from simulator.csi.report import Precoder, precoder_quality
from simulator.link import Message
from simulator.link_adaptation.backoff import cqi_tune
from simulator.phy.precoding import stream_sinr
from simulator.processes.context import RunContext, UeContext
from simulator.schema import BackoffConfig, Scenario


@dataclass(frozen=True)
class CsiRsSetup:
    """The CSI-RS and reporting settings of a run (from the scenario)."""
    period_us: int
    report_delay_us: int
    report_bits: int                      # CQI bits of a report
    subcarrier_spacing_hz: float
    num_rbs: int
    num_dmrs_symbols: int
    sinr_error_bias_db: float = 0.0       # the UE measures the SNR off by bias + std * N(0, 1) dB
    sinr_error_std_db: float = 0.0
    explore_max_offset: int = 0           # data collection: random CQI offsets (0: off)
    backoff: BackoffConfig | None = None  # CQI-Tune (None: off)

    @classmethod
    def of(cls, sc: Scenario) -> "CsiRsSetup":
        backoff = sc.link_adaptation.backoff
        return cls(int(round(sc.csi_rs.period_ms * 1000)), int(round(sc.csi_rs.report_delay_ms * 1000)),
                   sc.feedback.cqi_report_bits, sc.carrier.subcarrier_spacing_khz * 1e3, sc.carrier.num_prbs,
                   sc.phy.num_dmrs_symbols, sc.csi_rs.sinr_error_bias_db, sc.csi_rs.sinr_error_std_db,
                   sc.link_adaptation.cqi_exploration.max_offset, backoff if backoff.kind != "none" else None)


@dataclass(eq=False)
class Report:
    """The payload of a report message: the CQI, the precoder it was computed for (None: one gNB
    antenna) and, with neural CSI feedback, the compressed CSI. ``decoded`` succeeds (with the NMSE
    in dB) when the gNB has decoded the CSI."""
    cqi: int
    csi: object | None
    decoded: simpy.Event
    precoder: Precoder | None = None
    rank: int = 1                          # the layers of the precoder the CQI is for (neural: the gNB's to derive)


@dataclass(eq=False)
class _Occasion:
    t0: int
    period: int
    snr_db: float
    sinr_eff_db: float
    sinr_error_db: float
    cqi_table: int
    cqi: int
    msg: Message
    features: np.ndarray | None
    bler_predicted: float
    distance_m: float
    rank: int
    sgcs: float
    sgcs_min: float
    precoding_loss_db: float


def csi_rs_process(run: RunContext, ctx: UeContext, setup: CsiRsSetup, explore_rng: np.random.Generator,
                   error_rng: np.random.Generator):
    """One occasion every ``setup.period_us`` from t = 0; a ``periods`` row when each period ends.

    At each occasion, in this order: apply the UE's model updates whose compute time has passed
    (LightTune: an update made when period k closes takes effect at the first occasion after its
    compute time), measure and choose the CQI (with the predictor's weights in force, and CQI-Tune
    if configured), then close the previous period: its observed BLER goes to
    ``predictor.observe``, whose update starts a job on the adaptation path.

    The UE measures the SNR off by ``sinr_error_bias_db + sinr_error_std_db * N(0, 1)`` (drawn from
    ``error_rng`` at each occasion); the CQI and the BLER features use the measured value, the
    PDSCH keeps the true channel. With neural CSI feedback (``ctx.csi``) the report message also
    carries the compressed CSI, and the period's row is written once the gNB has decoded it.
    """
    env = run.env
    prev: _Occasion | None = None
    period = 0
    while env.now < run.duration_us:
        _apply_local_updates(run, ctx)
        std = setup.sinr_error_std_db
        err_db = setup.sinr_error_bias_db + (std * float(error_rng.standard_normal()) if std else 0.0)
        occ = _measure(run, ctx, setup, period, explore_rng, err_db)
        if prev is not None:
            _close(run, ctx, prev)
        prev = occ
        period += 1
        yield env.timeout(min(occ.t0 + setup.period_us, run.duration_us) - occ.t0)
    if prev is not None:
        _close(run, ctx, prev)


def _apply_local_updates(run: RunContext, ctx: UeContext) -> None:
    """Apply the updates waiting in the UE's Store now. Taken without yielding (a get on a
    non-empty Store is triggered at once), so an occasion stays one step of its instant."""
    store = ctx.model_updates
    while store is not None and store.items:
        run.adaptation.apply(store.get().value)


def _measure(run: RunContext, ctx: UeContext, setup: CsiRsSetup, period: int, explore_rng, err_db: float) -> _Occasion:
    env, ue, link, predictor = run.env, ctx.ue, ctx.link, ctx.predictor
    t0 = env.now
    slot = t0 // run.slot_us
    snr_db = float(ue.snr_db[slot])
    measured_db = snr_db + err_db                                   # what the UE believes
    distance_m = float(ue.mobility.distance_m([t0 * 1e-6])[0])
    csi = ctx.reporter.measure(ue.channel, slot, measured_db, distance_m)   # the precoder the gNB will use
    h, gain = ue.channel_through(slot, csi.precoder)
    rank = 1 if csi.precoder is None else csi.precoder.layers
    cqi_table, sinr_eff_db = link.mapper(rank).select(stream_sinr(h, gain, measured_db, rank))
    cqi, features, bler_pred = cqi_table, None, math.nan
    if setup.explore_max_offset:
        # data collection: a random CQI around the table's (the features keep the reported one)
        k = setup.explore_max_offset
        cqi = int(np.clip(cqi_table + explore_rng.integers(-k, k + 1), 1, 15))
    if predictor is not None or setup.explore_max_offset:
        nxt = min(slot + 1, len(ue.snr_db) - 1)
        features = bler_features(h, ue.channel_through(nxt, csi.precoder)[0], measured_db,
                                 run.slot_us * 1e-6, setup.subcarrier_spacing_hz, link.pdsch_sinr_db, cqi,
                                 setup.num_rbs, setup.num_dmrs_symbols)
    if predictor is not None:
        backoff = setup.backoff
        if backoff is not None and backoff.kind == "cqi_tune":
            cqi, _ = cqi_tune(cqi, lambda c: float(predictor.predict(features, np.array([c]))[0]),
                              backoff.tau_bler, backoff.cqi_min)
        bler_pred = float(predictor.predict(features, np.array([cqi]))[0])
    csi_report = csi.csi                                             # neural: the codec's report
    if csi_report is None and ctx.csi is not None:                   # track mode: the track's CSI
        csi_report = ctx.csi.on_occasion(distance_m)
    bits = setup.report_bits + csi.bits + (csi_report.bits if csi_report is not None else 0)
    # a neural report's precoder is the gNB's to derive from what it decodes (the same one, bit for bit)
    precoder = csi.precoder if csi.csi is None else None
    msg = Message("report", ue.id, bits, Report(cqi, csi_report, env.event(), precoder, rank), created_us=t0)
    sgcs, sgcs_min, loss_db = precoder_quality(csi)
    if run.trace is not None:
        run.trace.append((t0, "csi_rs", ue.id, period, cqi))
    env.process(_send_after(run, ctx, msg, setup.report_delay_us))
    return _Occasion(t0, period, snr_db, sinr_eff_db, err_db, cqi_table, cqi, msg, features, bler_pred, distance_m,
                    rank, sgcs, sgcs_min, loss_db)


def _send_after(run: RunContext, ctx: UeContext, msg: Message, delay_us: int):
    if delay_us:
        yield run.env.timeout(delay_us)
    if run.trace is not None:
        run.trace.append((run.env.now, "report_sent", msg.ue, msg.kind, msg.payload.cqi))
    ctx.uplink.send(msg)


def _close(run: RunContext, ctx: UeContext, occ: _Occasion) -> None:
    link, predictor = ctx.link, ctx.predictor
    t_end = run.env.now
    n_ack, n_nack = link.close_period()
    n = n_ack + n_nack
    bler_obs = n_nack / n if n else math.nan
    fine_tuned = False
    if predictor is not None and n:
        upd = predictor.observe(occ.features, occ.cqi, bler_obs, occ.bler_predicted)
        if upd is not None:
            fine_tuned = True
            run.adaptation.start(ctx.id, upd, local=ctx.model_updates)
    report: Report = occ.msg.payload
    row = {
        "t_us": occ.t0, "t_end_us": t_end, "ue": ctx.id, "period": occ.period, "snr_db": occ.snr_db,
        "sinr_eff_db": occ.sinr_eff_db, "sinr_error_db": occ.sinr_error_db, "cqi_table": occ.cqi_table,
        "cqi_reported": occ.cqi, "report_arrival_t_us": occ.msg.arrival_us, "bler_predicted": occ.bler_predicted,
        "bler_observed": bler_obs, "n_ack": n_ack, "n_nack": n_nack, "fine_tuned": fine_tuned,
        **_csi_columns(occ, report),
        "rank": occ.rank, "csi_sgcs": occ.sgcs, "csi_sgcs_min": occ.sgcs_min,
        "csi_precoding_loss_db": occ.precoding_loss_db,
        "distance_m": occ.distance_m,
        "features": None if occ.features is None else occ.features.tolist(),
    }
    if report.csi is not None and not report.decoded.triggered:
        # still queued or on the link: the row is written once the gNB has decoded the report
        # (or at the end of the run, with NaN NMSE: ``ctx.csi.finish``)
        ctx.csi.wait_for_decode(row, occ.msg)
    else:
        run.rec.append("periods", row)


def _csi_columns(occ: _Occasion, report: Report) -> dict:
    csi = report.csi
    if csi is None:
        return {"csi_bits": occ.msg.bits, "csi_bits_estimated": float(occ.msg.bits), "csi_nmse_db": math.nan,
                "csi_model_version": -1}
    return {"csi_bits": csi.bits, "csi_bits_estimated": csi.bits_estimated,
            "csi_nmse_db": report.decoded.value if report.decoded.triggered else math.nan,
            "csi_model_version": int(csi.version)}
