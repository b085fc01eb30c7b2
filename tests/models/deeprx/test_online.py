"""models.deeprx.online: the compute model of a network-side fine-tuning, the downlink update
coder (the UE's decoding of the bytes is the network's quantised copy, bit for bit) and the pool
loader (only the shards it needs)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models.csi_codec.update_coder import make_update_coder
from models.deeprx.config import ReceiverAdaptationConfig, ReceiverUpdateConfig
from models.deeprx.data import FORMAT_VERSION
from models.deeprx.data import load_dataset as load_pool
from models.deeprx.model import DeepRx, DeepRxConfig
from models.npz_file import file_sha256
from models.deeprx.online import forward_flops, job_flops
from tests.models.deeprx.conftest import TINY


@pytest.mark.parametrize("config", [DeepRxConfig(**TINY), DeepRxConfig.preset("small")], ids=["tiny", "small"])
def test_forward_flops_are_two_per_conv_weight_and_re(config):
    """A convolution does one MAC per kernel weight and output RE (standard, depthwise and 1x1 alike),
    so the MACs per RE are the number of kernel weights (biases and norms excluded)."""
    model = DeepRx(config)
    kernels = sum(int(np.prod(v.shape)) for n, v in zip(model.param_names, model.params)
                  if not n.endswith(("bias", "bias1", "bias2", "gamma", "beta")))
    assert forward_flops(config, 14, 48) == 2 * kernels * 14 * 48
    if config == DeepRxConfig(**TINY):
        # by hand: input 9*7*3; block 3->3: 2 (9*3 + 3*3); block 3->4: 9*3 + 3*4 + 9*4 + 4*4 + skip 3*4; out 4*2
        assert forward_flops(config, 4, 6) == 2 * (189 + 72 + 103 + 8) * 4 * 6


def test_job_flops():
    kw = dict(num_params=1000, top_k=40, hessian_subset=16, pool_size=200, num_targets=2, samples=50, steps=3)
    assert job_flops("random", 10.0, **kw) == 3 * 50 * 3 * 10.0
    # 80 HVPs of 16 samples at 6F, 202 gradients at 3F, the same training
    assert job_flops("influence", 10.0, **kw) == 80 * 16 * 60.0 + 202 * 30.0 + 4500.0
    assert job_flops("gradient_ascent", 10.0, **kw) == job_flops("influence", 10.0, **kw)
    assert job_flops("influence", 10.0, **{**kw, "num_params": 30}) == 30 * 16 * 60.0 + 202 * 30.0 + 4500.0


@pytest.mark.parametrize("prior", ["spike_slab", "uniform"])
def test_update_bytes_decode_to_the_quantised_weights(prior):
    rng = np.random.default_rng(0)
    old = [rng.normal(size=(3, 3, 7, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)]
    new = [o + rng.normal(scale=0.002, size=o.shape).astype(np.float32) for o in old]
    new[1][:] = old[1]                                        # an unchanged tensor costs (almost) nothing
    coder = make_update_coder(ReceiverUpdateConfig(bins=64, bin_width=0.0005, prior=prior, alpha=1000.0,
                                                   sigma_slab=0.005))
    coded = coder.encode(old, new)
    decoded = coder.decode(old, coded.data)
    for d, q, o, n in zip(decoded, coded.quantized, old, new):
        assert d.dtype == np.float32 and d.tobytes() == q.tobytes()
        assert np.max(np.abs(d - n)) <= 0.00025 + 1e-7                     # within half a bin (no clipping here)
    assert coded.num_weights == 256 and coded.nonzero <= 252
    if prior == "uniform":
        assert coded.bits == pytest.approx(256 * 6, abs=64)


def _fake_dataset(path, shard_sizes):
    path.mkdir()
    shards, start = [], 0
    for k, n in enumerate(shard_sizes):
        f = path / f"shard_{k:05d}.npz"
        np.savez(f, index=np.arange(start, start + n), no=np.full(n, 0.1, np.float32),
                 pilots=np.ones((14, 6), np.complex64), data_re=np.ones((14, 6), bool))
        shards.append({"file": f.name, "num_samples": n, "sha256": file_sha256(f)})
        start += n
    (path / "description.json").write_text(json.dumps({"format_version": FORMAT_VERSION, "config": {"kind": "deeprx_data"},
                                                       "shards": shards}))


def test_load_pool_reads_the_first_samples_from_the_shards_it_needs(tmp_path):
    _fake_dataset(tmp_path / "d", [3, 3, 2])
    (tmp_path / "d" / "shard_00002.npz").write_bytes(b"corrupt")          # not read for the first 6
    pool = load_pool(tmp_path / "d", 5)
    assert pool["index"].tolist() == [0, 1, 2, 3, 4] and pool["no"].shape == (5,)
    assert pool["pilots"].shape == (14, 6)
    assert load_pool(tmp_path / "d", 6)["index"].tolist() == list(range(6))
    with pytest.raises(ValueError, match="sha256"):
        load_pool(tmp_path / "d")
    _fake_dataset(tmp_path / "e", [2])
    with pytest.raises(ValueError, match="has 2 samples, 3 asked for"):
        load_pool(tmp_path / "e", 3)


def _grid_arrays(rng, n: int, num_sc: int = 12, width: int = 2) -> dict:
    """Random slots in the dataset layout (one DMRS symbol, QPSK on every other subcarrier)."""
    pilots = np.zeros((14, num_sc), np.complex64)
    pilots[2, 0::2] = (1 + 1j) / np.sqrt(2)
    data_re = np.ones((14, num_sc), bool)
    data_re[2] = False
    y = (rng.normal(size=(n, 1, 14, num_sc)) + 1j * rng.normal(size=(n, 1, 14, num_sc))).astype(np.complex64)
    return {"index": np.arange(100, 100 + n), "y": y, "no": np.full(n, 0.1, np.float32),
            "bits_per_symbol": np.full(n, width, np.int16),
            "bits": rng.integers(0, 2, (n, 14, num_sc, width)).astype(np.uint8), "pilots": pilots, "data_re": data_re}


@pytest.mark.parametrize("variant", ["random", "influence"])
def test_network_fine_tuner_job(tmp_path, variant):
    """One job on a tiny DeepRx: new weights (input untouched), the chosen pool samples by training
    index, and the modelled compute time of the variant."""
    from models.deeprx.online import NetworkFineTuner

    ckpt = DeepRx(DeepRxConfig(**TINY), seed=0).save(tmp_path / "rx.json")
    rng = np.random.default_rng(3)
    pool = _grid_arrays(rng, 10)
    cfg = ReceiverAdaptationConfig(variant=variant, samples=4, steps=2, learning_rate=0.01, hessian_subset=3, top_k=3,
                                   network_gflops=0.5, pool=str(tmp_path))       # the pool arrays below are used
    tuner = NetworkFineTuner(str(ckpt), cfg, num_subcarriers=12, pool=pool)
    w0 = [v.numpy().copy() for v in tuner.model.params]
    res = tuner.run(w0, _grid_arrays(rng, 1), np.random.default_rng(0))
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(w0, tuner.model.params))
    assert any(not np.array_equal(a, b) for a, b in zip(w0, res.weights))
    assert len(res.chosen_index) == 4 and set(res.chosen_index) <= set(range(100, 110))
    flops = job_flops(variant, forward_flops(tuner.model.config, 14, 12), num_params=tuner.num_params, top_k=3,
                      hessian_subset=3, pool_size=10, num_targets=1, samples=4, steps=2)
    assert res.flops == flops and res.compute_us == int(np.ceil(flops / 0.5e9 * 1e6))
    assert np.isfinite(res.loss_before) and np.isfinite(res.loss_after)
