"""The GPU variants of the benchmarks that matter (issue 15, item 6): link-level slots/s at 52 and 106
PRB, DeepRx inference, influence scoring. They run only where TensorFlow sees a GPU.

Run: .venv/bin/python -m pytest -m gpu -s tests/benchmarks/bench_gpu.py
Each prints its figure with the device's name; record them in docs/validation.md with the date.
The link-level figure is the engine's UE-slots/s on the quickstart at ``phy.backend=link_level``
(static UE, OLLA off: one MCS after the first report, as ``bench_link_level.py``), after a warm-up
run that compiles its chains; DeepRx inference is the small preset's forward pass on a batch of 64
slots of the 4-PRB grid and of 52 PRB; influence scoring is ``bench_influence.py``'s, 128 pool samples
against one target, k = 40.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow as tf

from simulator.engine import Simulation
from tests.benchmarks.bench_csi_codec import _best
from tests.benchmarks.bench_link_level import _scenario

GPUS = tf.config.list_physical_devices("GPU")
pytestmark = [pytest.mark.gpu, pytest.mark.benchmark,
              pytest.mark.skipif(not GPUS, reason="TensorFlow sees no GPU")]


def _device() -> str:
    details = tf.config.experimental.get_device_details(GPUS[0])
    return details.get("device_name", GPUS[0].name)


@pytest.mark.parametrize("num_prbs", [52, 106])
def test_gpu_link_level_slots_per_second(tmp_path, num_prbs):
    def scenario(slots):
        return _scenario("lmmse", slots, (f"carrier.num_prbs={num_prbs}",))

    Simulation(scenario(40), tmp_path / "warm").run()
    sc = scenario(2000)
    t0 = time.perf_counter()
    Simulation(sc, tmp_path / "run").run()
    rate = sc.num_slots / (time.perf_counter() - t0)
    print(f"\n[bench gpu] {_device()}: link_level quickstart, {num_prbs} PRB, LS+LMMSE: {rate:,.0f} UE-slots/s")
    assert rate > 0


@pytest.mark.parametrize("num_sc", [48, 624])
def test_gpu_deeprx_inference(num_sc):
    from models.deeprx.model import DeepRx, DeepRxConfig

    model = DeepRx(DeepRxConfig.preset("small"), seed=0)
    x = tf.random.normal([64, 14, num_sc, model.config.num_input_channels])
    model(x)                                                              # trace
    t = _best(lambda: [model(x).numpy() for _ in range(10)]) / 10
    print(f"\n[bench gpu] {_device()}: DeepRx small forward, batch 64 x 14 x {num_sc}: {64 / t:,.0f} slots/s")
    assert t > 0


def test_gpu_influence_scoring():
    from models.deeprx.influence import HessianOperator, InfluenceConfig, InfluenceScorer, fit_eigenbasis
    from models.deeprx.model import DeepRx, DeepRxConfig
    from tests.models.deeprx.conftest import random_batch

    model = DeepRx(DeepRxConfig.preset("small"), seed=0)
    rng = np.random.default_rng(0)
    subset, pool, target = (random_batch(rng, n, model.config, 14, 72) for n in (16, 128, 1))
    loss = model.per_sample_loss("bce")
    cfg = InfluenceConfig(top_k=40, batch_size=128)
    t0 = time.perf_counter()
    basis = fit_eigenbasis(HessianOperator(loss, model.params, subset), cfg)
    t_arnoldi = time.perf_counter() - t0
    scorer = InfluenceScorer(loss, model.params, basis, cfg)
    t = _best(lambda: scorer.scores(target, scorer.cache_pool(pool)))
    print(f"\n[bench gpu] {_device()}: Arnoldi k=40 {t_arnoldi:.1f} s; scoring 128 pool samples {t * 1e3:.0f} ms")
    assert t > 0
