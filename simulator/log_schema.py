"""Column schemas of the run logs: the one module ``analysis`` may import from the engine.

Times are integer microseconds (``t_us``); dB quantities end in ``_db``; NaN marks a value a
backend or model does not produce (e.g. ``ber`` in the abstraction backend).
"""
from __future__ import annotations

import hashlib
import json

import pyarrow as pa

SLOTS = pa.schema([
    ("t_us", pa.int64()),              # transmission start
    ("ue", pa.int32()),
    ("slot", pa.int64()),
    ("harq_process", pa.int16()),
    ("tx_round", pa.int16()),          # 1 = first transmission
    ("mcs", pa.int16()),
    ("tbs_bits", pa.int64()),
    ("snr_db", pa.float32()),          # average per-RE SNR of the slot
    ("sinr_eff_db", pa.float32()),     # EESM SINR (after HARQ combining) or post-equaliser SINR (link_level)
    ("olla_offset_db", pa.float32()),  # offset in force when the MCS was chosen
    ("cqi_used", pa.int16()),          # last CQI the gNB had received (0: none yet)
    ("ack", pa.bool_()),
    ("ack_t_us", pa.int64()),          # when the ACK/NACK reached the gNB
    ("delivered_bits", pa.int64()),    # tbs_bits on ACK, else 0
    ("receiver", pa.string()),
    ("ber", pa.float32()),             # uncoded BER of the slot (link_level), NaN otherwise
    ("ber_genie", pa.float32()),       # phy.receiver neural: uncoded BER of genie LMMSE on the same grid, else NaN
    ("ber_ls", pa.float32()),          # phy.receiver neural: uncoded BER of LS+LMMSE on the same grid, else NaN
    ("precoding_gain_db", pa.float32()),  # mean power of the precoded stream over one gNB antenna's (0: one antenna)
    ("layers", pa.int8()),             # layers of the transport block (1, or 2 with csi_rs.report.max_rank 2)
    ("prb_groups", pa.list_(pa.int16())),  # with a scheduler: the PRB groups of the block (null: the whole carrier)
    ("co_scheduled", pa.list_(pa.int32())),  # with a scheduler: the UEs sharing any of those groups (MU-MIMO)
])

PERIODS = pa.schema([
    ("t_us", pa.int64()),              # CSI-RS occasion (period start)
    ("t_end_us", pa.int64()),
    ("ue", pa.int32()),
    ("period", pa.int64()),
    ("snr_db", pa.float32()),          # average per-RE SNR at the occasion
    ("sinr_eff_db", pa.float32()),     # EESM SINR at the MCS the CQI was chosen for (as the UE measured it)
    ("sinr_error_db", pa.float32()),   # the UE's measurement error at the occasion (csi_rs.sinr_error_*)
    ("cqi_table", pa.int16()),         # CQI from the 38.214 table rule (BLER <= 10 %)
    ("cqi_reported", pa.int16()),      # CQI sent (after any backoff)
    ("report_arrival_t_us", pa.int64()),
    ("bler_predicted", pa.float32()),
    ("bler_observed", pa.float32()),   # n_nack / (n_ack + n_nack) of feedback received in the period
    ("n_ack", pa.int32()),
    ("n_nack", pa.int32()),
    ("fine_tuned", pa.bool_()),
    ("csi_bits", pa.int64()),          # feedback bits of the report (with a CSI codec: its coded latent
                                       # stream; the message also carries feedback.cqi_report_bits)
    ("csi_bits_estimated", pa.float32()),
    ("csi_nmse_db", pa.float32()),     # NMSE of the codec's reconstruction (neural CSI), NaN otherwise (a
                                       # codebook report reconstructs no channel)
    ("csi_model_version", pa.int32()), # neural: the decoder-side version the report was encoded for (0: the
                                       # checkpoint, +1 per update that took effect); -1 otherwise
    ("rank", pa.int8()),               # layers of the precoder the report implies (its RI with type1)
    ("csi_sgcs", pa.float32()),        # mean over subbands of |v^H w|^2: the precoder the CQI was computed for
                                       # against the measured channel's dominant eigenvector (NaN: one gNB antenna)
    ("csi_sgcs_min", pa.float32()),    # the smallest subband's |v^H w|^2
    ("csi_precoding_loss_db", pa.float32()),  # 10 log10 of the per-RE eigen-beamforming gain over that
                                              # precoder's, summed over the carrier at the occasion
    ("distance_m", pa.float32()),      # distance travelled by the UE at the occasion
    ("features", pa.list_(pa.float32())),  # BLER-predictor features (models.base.BLER_FEATURES), or null
])

UPDATES = pa.schema([
    ("t_us", pa.int64()),
    ("ue", pa.int32()),
    ("model", pa.string()),
    ("trigger", pa.string()),
    ("trigger_value", pa.float32()),     # the quantity that fired it (LightTune: |predicted - observed BLER|)
    ("compute_us", pa.int64()),
    ("state_bytes", pa.int64()),         # model state read or written by the update (weights, moments, activations)
    ("update_bits", pa.int64()),
    ("applied_t_us", pa.int64()),        # when it took effect (CSI codec full_model: arrival at the gNB)
    ("loss_before", pa.float32()),
    ("loss_after", pa.float32()),
    ("variant", pa.string()),            # CSI codec: fine-tuning scheme; receiver: adaptation variant (null for LightTune)
    ("update_bits_estimated", pa.float32()),  # the prior's -log2 p of the coded update (eq. 19)
    ("update_nonzero", pa.int64()),      # quantised weight deltas != 0
    ("update_weights", pa.int64()),      # weights the update covers
    ("target", pa.list_(pa.int64())),    # receiver adaptation: slots of the UE's target transmissions
    ("ber_gap_before", pa.float32()),    # receiver adaptation: mean relative BER gap to genie on the targets,
    ("ber_gap_after", pa.float32()),     # with the old weights / with the applied update (NaN: not applied)
])

TABLES = {"slots": SLOTS, "periods": PERIODS, "updates": UPDATES}


# Fields of a resolved scenario that do not change what a run computes: where the logs go and how
# often they are flushed, and how many link-level programs are compiled ahead of need.
RESULT_NEUTRAL = (("output",), ("phy", "compile_ahead"))


def result_fields(scenario: dict) -> dict:
    """``scenario`` (a resolved scenario dict) less the ``RESULT_NEUTRAL`` fields: what two runs must
    share to give the same logs."""
    kept = dict(scenario)
    for path in RESULT_NEUTRAL:
        node = kept
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                break
            node[key] = node = dict(node[key])
        else:
            node.pop(path[-1], None)
    return kept


def scenario_digest(scenario: dict) -> str:
    """sha256 of a run's resolved scenario (``manifest.json``'s ``scenario``: JSON with sorted keys) less
    its ``RESULT_NEUTRAL`` fields: the identity by which a study's committed per-point record
    (analysis.point_record) is matched to its sweep files' points. A study run into another results
    folder, or with another ``phy.compile_ahead``, still matches its record."""
    kept = result_fields(scenario)
    return hashlib.sha256(json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
