"""PRB groups: how the carrier is cut into the units the scheduler allocates.

The rule is 38.214 downlink resource allocation type 0 (clause 5.1.2.2.1) on a bandwidth part that
starts at PRB 0 and spans the carrier: groups of P consecutive PRBs from PRB 0, the last group
shorter when P does not divide the carrier, and P one of the two nominal RBG sizes that Table
5.1.2.2.1-1 gives for the carrier's size (configuration 1 or 2). The table is
``simulator/data/rbg_sizes.json``.
"""
from __future__ import annotations

import functools
import json
from importlib import resources

import numpy as np


@functools.cache
def _rbg_rows() -> tuple[tuple[int, int, int], ...]:
    data = json.loads(resources.files("simulator").joinpath("data/rbg_sizes.json").read_text())
    return tuple(tuple(row) for row in data["rows"])


def rbg_sizes(num_prbs: int) -> tuple[int, int]:
    """(P for configuration 1, P for configuration 2) of 38.214 Table 5.1.2.2.1-1 for a carrier of
    ``num_prbs`` PRBs. Raises ValueError outside the table's 1..275 PRBs."""
    for max_prbs, config1, config2 in _rbg_rows():
        if 1 <= num_prbs <= max_prbs:
            return config1, config2
    raise ValueError(f"38.214 Table 5.1.2.2.1-1 covers 1..{_rbg_rows()[-1][0]} PRBs (got {num_prbs})")


def group_prbs(num_prbs: int, prb_group_prbs: int | None) -> int:
    """The group size P in PRBs: ``prb_group_prbs``, or configuration 1's size when it is None."""
    return rbg_sizes(num_prbs)[0] if prb_group_prbs is None else prb_group_prbs


def group_subcarriers(group_sizes_prbs: np.ndarray) -> list[np.ndarray]:
    """The subcarrier indices of each group, [num_groups] arrays of 12 x its PRBs (groups from PRB 0)."""
    starts = np.concatenate([[0], np.cumsum(group_sizes_prbs)[:-1]])
    return [np.arange(12 * s, 12 * (s + n)) for s, n in zip(starts, group_sizes_prbs)]


def group_sizes_prbs(num_prbs: int, prb_group_prbs: int | None) -> np.ndarray:
    """[num_groups] int64: the PRBs in each group, groups of P from PRB 0, the last one shorter when
    P does not divide ``num_prbs`` (52 PRBs, P = 8: six groups of 8 and one of 4)."""
    p = group_prbs(num_prbs, prb_group_prbs)
    sizes = np.full(-(-num_prbs // p), p, dtype=np.int64)
    sizes[-1] = num_prbs - p * (len(sizes) - 1)
    return sizes
