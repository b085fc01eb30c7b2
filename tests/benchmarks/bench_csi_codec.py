"""CSI codec speed: range-coder symbols per second and CSI reports encoded + decoded per second.

Run: .venv/bin/python -m pytest -m benchmark -s tests/benchmarks/bench_csi_codec.py
Codec: the paper's architecture (64 kernels, 5x5) at the 32x32 preset, untrained weights (speed
does not depend on training). Reports are synthetic few-path CSI. Each figure is the best of
three timed repeats, after a warm-up call (tracing excluded).

- latent coder: a stream of 2,000 reports of 8x8x2 symbols, coded report by report as the stream
  layout prescribes (LatentCoder), and one i.i.d. constriction call over the same symbols for
  reference (the layout's per-call overhead is the difference).
- update coder: the 109 K decoder-side weights of the 64x64-preset codec (spike-and-slab, 64 bins).
- reports: UE compress (TF, batch 1) + range encode + gNB range decode + decompress (TF, batch 1),
  one stream per report; and the same with 64 reports per call and per stream; then the same
  with the committed trained checkpoint (32 kernels).
"""
from __future__ import annotations

import time

import constriction
import numpy as np
import pytest

from models.csi_codec.bitstream import LatentCoder, categorical
from models.csi_codec.model import ConvCsiCodec, ConvCsiConfig
from models.csi_codec.update_coder import SpikeSlabPrior, UpdateCoder, UpdateQuantizer
from tests.conftest import REPO
from tests.models.csi_codec.conftest import few_path_csi

CHECKPOINT = REPO / "models" / "checkpoints" / "csi_conv_cdl_c_32x32.json"

pytestmark = pytest.mark.benchmark


def _best(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def test_range_coder_symbols_per_second():
    codec = ConvCsiCodec(ConvCsiConfig.preset("32x32"), seed=0)
    tables = codec.probability_tables()
    coder = LatentCoder(tables, codec.config.latent_shape)
    rng = np.random.default_rng(0)
    reports = 2000
    y = np.rint(rng.laplace(0, 3, (reports, 8, 8, 2))).astype(np.int32)
    n = y.size
    coded = coder.encode(y)
    t_enc = _best(lambda: coder.encode(y))
    t_dec = _best(lambda: coder.decode(coded))
    assert np.array_equal(coder.decode(coded), y)

    idx = (y[..., 0].reshape(-1) - tables.minima[0]).astype(np.int32)
    model = categorical(tables.counts[0])

    def iid_encode():
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(idx, model)
        return enc.get_compressed()

    words = iid_encode()
    t_iid_enc = _best(iid_encode)
    t_iid_dec = _best(lambda: constriction.stream.queue.RangeDecoder(words).decode(model, idx.size))

    q = UpdateQuantizer(64, 0.005)
    ucoder = UpdateCoder(q, SpikeSlabPrior())
    old = [v.numpy() for v in ConvCsiCodec(ConvCsiConfig.preset("64x64")).decoder_weights]
    new = [o + (rng.normal(0, 0.01, o.shape) * (rng.random(o.shape) < 0.05)).astype(np.float32) for o in old]
    upd = ucoder.encode(old, new)
    t_uenc = _best(lambda: ucoder.encode(old, new))
    t_udec = _best(lambda: ucoder.decode(old, upd.data))
    print(f"\n[bench] latent coder ({reports} reports x 128 symbols, one stream, {coded.bits / n:.2f} bit/symbol): "
          f"encode {n / t_enc / 1e6:.2f} M symbols/s, decode {n / t_dec / 1e6:.2f} M symbols/s | "
          f"one i.i.d. constriction call over {idx.size} symbols: encode {idx.size / t_iid_enc / 1e6:.1f} M/s, "
          f"decode {idx.size / t_iid_dec / 1e6:.1f} M/s | update coder ({upd.num_weights} weights, "
          f"{upd.nonzero} non-zero, {upd.bits} bits): encode {upd.num_weights / t_uenc / 1e6:.2f} M weights/s "
          f"(incl. quantisation), decode {upd.num_weights / t_udec / 1e6:.2f} M weights/s")
    assert n / t_enc > 1e5 and n / t_dec > 1e5


def test_csi_reports_encoded_and_decoded_per_second():
    codec = ConvCsiCodec(ConvCsiConfig.preset("32x32"), seed=0)
    coder = LatentCoder(codec.probability_tables(), codec.config.latent_shape)
    x = few_path_csi(np.random.default_rng(1), 64)

    def one_by_one():
        for i in range(len(x)):
            sym, _ = codec.compress(x[i:i + 1])
            back = coder.decode(coder.encode(sym))
            codec.decompress(back)

    def batched():
        sym, _ = codec.compress(x)
        codec.decompress(coder.decode(coder.encode(sym)))

    t1 = _best(one_by_one)
    t64 = _best(batched)
    t_tf = _best(lambda: [codec.compress(x[i:i + 1]) for i in range(len(x))])
    print(f"\n[bench] CSI reports (32x32, 64 kernels, untrained; model + range coder, encode + decode): "
          f"{len(x) / t1:.0f} reports/s one per call and stream, {len(x) / t64:.0f} reports/s 64 per call "
          f"and stream | UE compress alone (TF, batch 1): {len(x) / t_tf:.0f} reports/s")
    assert len(x) / t1 > 5

    codec = ConvCsiCodec.load(CHECKPOINT)                  # trained: realistic latents and tables
    coder = LatentCoder(codec.probability_tables(), codec.config.latent_shape)
    t1 = _best(one_by_one)
    t64 = _best(batched)
    sym, est = codec.compress(x)
    print(f"[bench] committed checkpoint ({codec.config.filters} kernels; {est.mean():.0f} bits/report on the "
          f"synthetic few-path input): "
          f"{len(x) / t1:.0f} reports/s one per call and stream, {len(x) / t64:.0f} reports/s 64 per call")
