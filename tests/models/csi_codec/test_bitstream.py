"""Range-coded latents: exact round trips (one stream, one per report, escapes), and coded bits
within 1 % + 64 bits per stream of the model's -log2 likelihood estimate."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.csi_codec.bitstream import CodedLatents, LatentCoder
from tests.models.csi_codec.conftest import sample_known

H, W = 8, 8


@pytest.fixture(scope="module")
def coder(fitted_density):
    return LatentCoder(fitted_density.probability_tables(tail_mass=1e-9), (H, W))


def _latents(seed: int, reports: int) -> np.ndarray:
    return np.rint(sample_known(np.random.default_rng(seed), (reports, H, W))).astype(np.int32)


def test_one_stream_of_many_reports_round_trips(coder):
    y = _latents(1, 200)
    coded = coder.encode(y)
    assert coded.num_reports == 200 and coded.bits == 8 * len(coded.data) and coded.bits % 32 == 0
    back = coder.decode(coded.data, 200)
    assert back.dtype == np.int32 and np.array_equal(back, y)
    # fewer reports than encoded: the first ones, in order (streams decode report by report)
    assert np.array_equal(coder.decode(coded.data, 3), y[:3])


def test_one_stream_per_report_round_trips(coder):
    y = _latents(2, 20)
    streams = coder.encode_each(y)
    assert len(streams) == 20 and all(s.num_reports == 1 for s in streams)
    back = np.concatenate([coder.decode(s) for s in streams])
    assert np.array_equal(back, y)
    assert len({s.data for s in streams}) > 1                   # the reports really differ


def test_values_outside_the_tables_escape_and_round_trip(coder):
    y = _latents(3, 4)
    lo, size = coder.lo, coder.size
    y[0, 0, 0, 0] = lo[0] - 1                                 # just below the range
    y[0, 0, 1, 0] = lo[0] + size[0]                           # just above
    y[1, 2, 3, 1] = 2 ** 30                                   # far above
    y[2, 7, 7, 1] = -(2 ** 30)                                # far below
    y[3, 4, 4, 0] = lo[0] - 70000                             # needs two 16-bit chunks
    coded = coder.encode(y)
    assert np.array_equal(coder.decode(coded), y)
    base = coder.encode(_latents(3, 4))
    assert coded.bits > base.bits                             # escapes cost extra bits


def test_coded_bits_close_to_the_model_estimate(coder, fitted_density):
    y = _latents(4, 300)
    estimate = fitted_density.bits(y.astype(np.float32)).numpy()          # [reports]
    one = coder.encode(y)
    assert one.bits <= 1.01 * estimate.sum() + 64, (one.bits, estimate.sum())
    # a range coder cannot beat -log2 of its own table probabilities
    assert one.bits >= coder.tables.ideal_bits(y) - 1
    for s, e in zip(coder.encode_each(y[:30]), estimate[:30]):
        assert s.bits <= 1.01 * e + 64, (s.bits, e)


def test_bad_inputs_are_refused(coder):
    with pytest.raises(ValueError, match="must be \\[reports, 8, 8, 2\\]"):
        coder.encode(np.zeros((2, 8, 4, 2), np.int32))
    with pytest.raises(ValueError, match="integers"):
        coder.encode(np.zeros((2, 8, 8, 2), np.float32))
    with pytest.raises(ValueError, match="32-bit words"):
        coder.decode(b"abc", 1)
    with pytest.raises(ValueError, match="num_reports"):
        coder.decode(CodedLatents(b"", 0).data)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_int32_latents_round_trip(coder, data):
    """Property: whatever the integers (table range, escapes, int32 extremes), the stream decodes."""
    reports = data.draw(st.integers(0, 3))
    values = st.one_of(st.integers(-40, 40), st.integers(-(2 ** 31), 2 ** 31 - 1))
    flat = data.draw(st.lists(values, min_size=reports * H * W * 2, max_size=reports * H * W * 2))
    y = np.array(flat, np.int64).reshape(reports, H, W, 2).astype(np.int32)
    assert np.array_equal(coder.decode(coder.encode(y)), y)
