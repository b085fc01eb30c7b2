"""BLER training data from the simulator."""
from __future__ import annotations

import numpy as np

from models.base import BLER_FEATURES
from simulator.datagen.bler import BlerDataConfig, collect_bler_dataset
from tests.conftest import TINY


def test_collect_bler_dataset_covers_the_bler_range():
    scenario = {**TINY, "duration_s": 1.0, "csi_rs": {"period_ms": 10, "report_delay_ms": 2},
                "link_adaptation": {"olla": {"enabled": False}, "cqi_exploration": {"max_offset": 4}}}
    cfg = BlerDataConfig(scenario=scenario, snr_db=[3.0, 12.0], seeds=[1, 2])
    df = collect_bler_dataset(cfg)
    assert list(df.columns[:12]) == list(BLER_FEATURES)
    assert len(df) > 300 and set(df.seed) == {1, 2} and set(df.snr_db_point) == {3.0, 12.0}
    assert df.bler_observed.between(0, 1).all()
    assert (df.bler_observed < 0.05).mean() > 0.1 and (df.bler_observed > 0.5).mean() > 0.1
    # measured SNR feature follows the configured point
    means = df.groupby("snr_db_point").csi_rs_snr_db.mean()
    assert np.isclose(means[12.0] - means[3.0], 9.0, atol=2.0)
