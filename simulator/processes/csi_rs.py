"""csi_rs: measure at each CSI-RS occasion, report the CQI after the UE's processing delay,
and close the period with its observed BLER."""
from __future__ import annotations

import simpy

from simulator.feedback import Message
from simulator.phy.base import per_re_sinr


def csi_rs_process(env: simpy.Environment, ue, link, feedback, *, period_us: int, report_delay_us: int,
                   slot_us: int, duration_us: int, report_bits: int, rec, trace: list | None = None):
    """One occasion every ``period_us`` from t = 0; a ``periods`` row when each period ends."""
    period = 0
    while env.now < duration_us:
        t0 = env.now
        slot = t0 // slot_us
        snr_db = float(ue.snr_db[slot])
        cqi, sinr_eff_db = link.cqi_mapper.select(per_re_sinr(ue.channel.gain_slot(slot), snr_db))
        report = Message("cqi", ue.id, report_bits, cqi, created_us=t0)
        if trace is not None:
            trace.append((t0, "csi_rs", ue.id, period, cqi))
        if report_delay_us:
            env.timeout(report_delay_us).callbacks.append(lambda _ev, m=report: _send(feedback, m, trace))
        else:
            _send(feedback, report, trace)
        t_end = min(t0 + period_us, duration_us)
        yield env.timeout(t_end - t0)
        n_ack, n_nack = link.close_period()
        n = n_ack + n_nack
        rec.append("periods", {
            "t_us": t0, "t_end_us": t_end, "ue": ue.id, "period": period, "snr_db": snr_db,
            "sinr_eff_db": sinr_eff_db, "cqi_table": cqi, "cqi_reported": cqi,
            "report_arrival_t_us": report.arrival_us, "bler_predicted": float("nan"),
            "bler_observed": n_nack / n if n else float("nan"), "n_ack": n_ack, "n_nack": n_nack,
            "fine_tuned": False, "csi_bits": report_bits, "csi_bits_estimated": float(report_bits),
            "csi_nmse_db": float("nan"), "distance_m": float(ue.mobility.distance_m([t0 * 1e-6])[0]),
        })
        period += 1


def _send(feedback, msg: Message, trace) -> None:
    if trace is not None:
        trace.append((feedback.env.now, "report_sent", msg.ue, msg.kind, msg.payload))
    feedback.send(msg)
