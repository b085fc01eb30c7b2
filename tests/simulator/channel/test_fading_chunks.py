"""Every drawn channel (TDL, CDL, UMa) read through FadingChannel a chunk at a time (issue 15, item 5):
the same values whatever the chunk size and the order the slots are asked in, continuous across
chunk boundaries, and no more chunks kept than CACHED_CHUNKS."""
from __future__ import annotations

import numpy as np
import pytest

import simulator.channel.fading as fading
from simulator.channel.fading import FadingChannel
from simulator.memory_estimate import GENERATION_BYTES_PER_SAMPLE_PAIR
from simulator.schema import CarrierConfig, ChannelConfig, GnbConfig


@pytest.mark.parametrize("model", ["tdl", "cdl", "uma"])
def test_fading_channel_is_the_same_whatever_the_chunk_and_the_order(monkeypatch, model):
    carrier = CarrierConfig(num_prbs=4)
    cfg = ChannelConfig(model=model, profile="C", delay_spread_ns=300) if model != "uma" else ChannelConfig(model=model)
    gnb = GnbConfig(antenna_rows=1, antenna_cols=2, position_m=[0, 0, 25])
    slots = np.arange(700)
    kw = dict(start_position_m=np.array([50.0, 20.0, 1.5]), velocity_mps=np.array([30 / 3.6, 0.0, 0.0]))

    def channel():
        return FadingChannel(cfg, carrier, 1, 30 / 3.6, slots, seed=3, gnb=gnb, **kw)

    reference = channel().cfr(slots)                        # default chunk: all 700 samples in one
    monkeypatch.setattr(fading, "CHUNK_BYTES", 64 * GENERATION_BYTES_PER_SAMPLE_PAIR[model] * 2 + 1)   # 64 samples
    small = channel()
    assert small._chunk == 64
    order = np.random.default_rng(0).permutation(slots)     # out of order: chunks evicted and regenerated
    got = np.empty_like(reference)
    for k in range(0, len(order), 37):
        got[order[k:k + 37]] = small.cfr(order[k:k + 37])
    assert np.array_equal(got, reference)
    assert len(small._chunks) <= fading.CACHED_CHUNKS
    # continuous across a chunk boundary: the step from slot 63 to 64 is like its neighbours' steps
    h = reference[:, 0, 0, 0]
    steps = np.abs(np.diff(h))
    assert steps[63] < 5 * np.median(steps[40:90])
