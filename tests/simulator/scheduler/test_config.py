"""Scheduler config: out-of-range values name their field; the cross-field checks; PRB groups."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from simulator.scheduler.config import SchedulerConfig, check_fits
from simulator.scheduler.prb_groups import group_sizes_prbs, rbg_sizes


@pytest.mark.parametrize("data, loc", [
    ({"kind": "max_rate"}, ("kind",)),
    ({"prb_group_prbs": 0}, ("prb_group_prbs",)),
    ({"prb_group_prbs": 17}, ("prb_group_prbs",)),
    ({"max_ues_per_prb": 0}, ("max_ues_per_prb",)),
    ({"max_ues_per_prb": 13}, ("max_ues_per_prb",)),
    ({"pf": {"beta": 1.0}}, ("pf", "beta")),
    ({"pf": {"beta": 0.0}}, ("pf", "beta")),
    ({"pf": {"rate_exponent": 0.0}}, ("pf", "rate_exponent")),
    ({"pf": {"throughput_exponent": -0.5}}, ("pf", "throughput_exponent")),
    ({"pf": {"fairness": 1.0}}, ("pf", "fairness")),
    ({"max_ue_per_prb": 2}, ("max_ue_per_prb",)),
])
def test_out_of_range_values_name_their_field(data, loc):
    with pytest.raises(ValidationError) as exc:
        SchedulerConfig(**data)
    assert [e["loc"] for e in exc.value.errors()] == [loc]


def test_defaults_fit_a_52_prb_carrier_and_any_array():
    cfg = SchedulerConfig()
    assert (cfg.kind, cfg.max_ues_per_prb, cfg.pf.beta) == ("pf", 1, 0.98)
    assert check_fits(cfg, num_prbs=52, num_gnb_ports=1) == []


@pytest.mark.parametrize("ues, ports, layers, fits", [
    (4, 32, 1, True), (4, 4, 1, True), (4, 3, 1, False), (2, 1, 1, False), (4, 4, 2, False), (2, 4, 2, True),
])
def test_more_layers_per_prb_than_gnb_ports_is_refused(ues, ports, layers, fits):
    problems = check_fits(SchedulerConfig(max_ues_per_prb=ues), num_prbs=52, num_gnb_ports=ports,
                          layers_per_ue=layers)
    assert [field for field, _ in problems] == ([] if fits else ["max_ues_per_prb"])
    if not fits:
        assert f"has {ports}" in problems[0][1]


@pytest.mark.parametrize("num_prbs, allowed", [(1, (2, 4)), (36, (2, 4)), (37, (4, 8)), (52, (4, 8)),
                                                (72, (4, 8)), (73, (8, 16)), (144, (8, 16)), (145, (16, 16)),
                                                (273, (16, 16))])
def test_prb_group_size_must_be_a_38214_rbg_size_of_the_carrier(num_prbs, allowed):
    assert rbg_sizes(num_prbs) == allowed
    for p in range(1, 17):
        problems = check_fits(SchedulerConfig(prb_group_prbs=p), num_prbs=num_prbs, num_gnb_ports=1)
        assert [field for field, _ in problems] == ([] if p in allowed else ["prb_group_prbs"])
        if problems:
            assert f"got {p}" in problems[0][1] and str(sorted(set(allowed))) in problems[0][1]


def test_rbg_table_ends_at_275_prbs():
    with pytest.raises(ValueError, match="276"):
        rbg_sizes(276)


def test_group_sizes_cover_the_carrier_with_only_the_last_group_shorter():
    assert group_sizes_prbs(52, None).tolist() == [4] * 13
    assert group_sizes_prbs(52, 8).tolist() == [8] * 6 + [4]
    assert group_sizes_prbs(1, None).tolist() == [1]
    for num_prbs in range(1, 276):
        for p in sorted(set(rbg_sizes(num_prbs))):
            sizes = group_sizes_prbs(num_prbs, p)
            assert sizes.sum() == num_prbs and len(sizes) == -(-num_prbs // p)
            assert np.all(sizes[:-1] == p) and 1 <= sizes[-1] <= p
