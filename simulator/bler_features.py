"""The BLER predictor's 12 features (``models.base.BLER_FEATURES``), computed at a CSI-RS occasion
from what the UE measures; nothing is copied from the scenario."""
from __future__ import annotations

from collections import deque

import numpy as np

from models.base import BLER_FEATURES
from simulator.measurements import capacity_bps_hz, doppler_hz, rms_delay_spread_ns, wideband_snr_db


def bler_features(h: np.ndarray, h_next: np.ndarray, snr_db: float, slot_s: float, subcarrier_spacing_hz: float,
                  pdsch_sinr_db: deque, cqi: int, num_rbs: int, num_dmrs_symbols: int) -> np.ndarray:
    """-> [12] float32 in the order of ``BLER_FEATURES``.

    h, h_next: the measured channel [num_ue_ant, num_subcarriers] at the occasion and one slot
    later (a tracking-reference pair for the Doppler estimate); pdsch_sinr_db: effective SINRs
    (dB) of the most recent PDSCH receptions, newest last (missing ones repeat the oldest known,
    or the CSI-RS SNR before any). Rank is 1: one transmit antenna.
    """
    snr = wideband_snr_db(h, snr_db)
    hist = list(pdsch_sinr_db)[-4:][::-1]
    hist += [hist[-1] if hist else snr] * (4 - len(hist))
    f = [snr, capacity_bps_hz(h, snr_db), rms_delay_spread_ns(h, subcarrier_spacing_hz),
         doppler_hz(h, h_next, slot_s), *hist, 1.0, float(cqi), float(num_rbs), float(num_dmrs_symbols)]
    assert len(f) == len(BLER_FEATURES)
    return np.asarray(f, dtype=np.float32)
