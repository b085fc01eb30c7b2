"""Shared check of the channel sources' end-to-end runs with a gNB array and ideal CSI."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def assert_precoded_after_first_report(run_dir: Path, min_slots: int = 300) -> None:
    """Once the first CSI report has arrived, every transmission of the run in ``run_dir`` (at least
    ``min_slots`` of them) is precoded with a gain over one gNB antenna's power; before it, none is."""
    slots = pd.read_parquet(run_dir / "slots.parquet")
    first_report_us = pd.read_parquet(run_dir / "periods.parquet").report_arrival_t_us.min()
    precoded = slots[slots.t_us >= first_report_us]
    assert len(precoded) > min_slots and (precoded.precoding_gain_db > 0).all(), precoded.precoding_gain_db.describe()
    assert (slots[slots.t_us < first_report_us].precoding_gain_db == 0).all()
