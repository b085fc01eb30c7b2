"""FF trains with both losses on sklearn's digits (short version of models/ff_bler/digits.py)."""
from __future__ import annotations

import pytest

pytest.importorskip("sklearn")


def test_softplus_and_quadratic_losses_both_learn_digits():
    from models.ff_bler.digits import run

    soft, quad = run("softplus", seed=0, epochs=8), run("quadratic", seed=0, epochs=8)
    assert soft > 0.85 and quad > 0.85          # chance is 0.10
    assert abs(soft - quad) < 0.05
