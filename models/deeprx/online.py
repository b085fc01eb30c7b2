"""Network-side targeted fine-tuning of a UE's DeepRx, and the coded update that carries it (no SimPy).

The event loop's ``receiver_adaptation`` process (``simulator/processes/receiver_adaptation.py``)
uses two objects from here:

- ``NetworkFineTuner`` holds the training pool (the first ``pool_size`` samples of a deeprx
  dataset, loaded once and shared by every UE) and runs one fine-tuning job: from the weights the
  network knows the UE holds, on target slots given in the dataset layout, with
  ``models.deeprx.targeted`` (a new ``TargetedFineTuner`` per job, since the Hessian and the pool
  projections belong to the weights it starts from). It returns the new weights, the pool rows
  chosen, the target loss before and after, and the job's modelled compute time.
- the weight delta is quantised (``update.bins``, ``bin_width``) and range-coded under a
  spike-and-slab or uniform prior by ``models.csi_codec.update_coder.make_update_coder``, the same
  coder as the CSI decoder updates (``DeepRx.update_coder``). The network keeps the quantised
  weights it encoded as its copy of the UE's; the UE rebuilds them from the bytes alone.

Compute time is modelled, not measured, so the same seed gives the same logs. With F the forward
FLOPs of one slot (``forward_flops``: 2 FLOPs a multiply-accumulate of every convolution), a
per-sample gradient costs 3F and a per-sample Hessian-vector product 6F (forward-over-backward,
~2 gradients; measured 1.9-2.7 in ``tests/benchmarks/bench_influence.py``):

  influence, gradient_ascent:  HVPs x hessian_subset x 6F     (Arnoldi: 2 top_k HVPs, at most the parameters)
                               + (pool_size + num_targets) x 3F (pool projected once, target gradients)
                               + steps x samples x 3F          (fine-tuning)
  random:                      steps x samples x 3F

charged at ``network_gflops``. (The random variant's run still builds the influence machinery
here, with one eigenpair, because ``TargetedFineTuner`` always does; it is not charged.)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from models.deeprx.config import ReceiverAdaptationConfig
from models.deeprx.data import load_dataset
from models.deeprx.model import DeepRxConfig
from models.deeprx.targeted import relative_ber_gap, select_targets


def forward_flops(cfg: DeepRxConfig, num_symbols: int, num_subcarriers: int) -> float:
    """FLOPs of one DeepRx forward pass on a [num_symbols, num_subcarriers] grid (2 per MAC; norms,
    activations and biases not counted)."""
    k2 = cfg.kernel_size ** 2
    macs = k2 * cfg.num_input_channels * cfg.input_filters
    cin = cfg.input_filters
    for cout, _, _ in cfg.blocks:
        macs += k2 * cin + cin * cout            # separable conv 1: depthwise on cin, pointwise cin -> cout
        macs += k2 * cout + cout * cout          # separable conv 2
        if cin != cout:
            macs += cin * cout                   # 1x1 skip projection
        cin = cout
    macs += cin * cfg.max_bits_per_symbol        # output 1x1 conv
    return 2.0 * macs * num_symbols * num_subcarriers


def job_flops(variant: str, forward: float, *, num_params: int, top_k: int, hessian_subset: int, pool_size: int,
              num_targets: int, samples: int, steps: int) -> float:
    """Modelled FLOPs of one fine-tuning job (module docstring); ``forward``: FLOPs of one slot."""
    train = steps * samples * 3.0 * forward
    if variant == "random":
        return train
    hvps = min(2 * top_k, num_params)
    return hvps * hessian_subset * 6.0 * forward + (pool_size + num_targets) * 3.0 * forward + train


@dataclass
class JobResult:
    """One network-side fine-tuning."""
    weights: list[np.ndarray]        # fine-tuned (not yet quantised), model.params order
    chosen_index: np.ndarray         # training sample indices of the pool samples fine-tuned on
    loss_before: float               # mean target loss (cfg.loss) before and after, unquantised weights
    loss_after: float
    compute_us: int
    flops: float
    state_bytes: int                 # weights, gradients and optimiser/eigenbasis state held by the job


class NetworkFineTuner:
    """The network side's training pool and fine-tuning jobs for one receiver model.

    run: weights [list, model.params order], targets (dataset-layout arrays of the target slots,
         ``SlotHistory.slot_arrays``), rng -> JobResult
    ``adaptation``: the ``models.receiver.adaptation`` settings.
    The compute model's slot has ``num_subcarriers`` and the OFDM symbols of the pool's pilot grid.
    """

    # the trigger rule's pieces (seeds/000 eq. 9 and the target choice), for the event loop
    relative_ber_gap = staticmethod(relative_ber_gap)
    select_targets = staticmethod(select_targets)

    def __init__(self, checkpoint: str, adaptation: ReceiverAdaptationConfig, num_subcarriers: int, pool=None):
        from models.deeprx.model import DeepRx

        self.cfg = adaptation
        self.model = DeepRx.load(checkpoint)
        self.width = self.model.config.max_bits_per_symbol
        self.pool_arrays = pool if pool is not None else load_dataset(self.cfg.pool, self.cfg.pool_size)
        self.pool_size = len(self.pool_arrays["index"])
        self.forward = forward_flops(self.model.config, self.pool_arrays["pilots"].shape[0], num_subcarriers)
        self.num_params = self.model.num_parameters()
        self._pool_batch = None

    def _batches(self):
        from models.deeprx.data import to_batch

        if self._pool_batch is None:
            dtype = self.model.config.dtype
            self._pool_batch = to_batch(self.pool_arrays, self.width, dtype)
            self._subset = to_batch(self.pool_arrays, self.width, dtype,
                                    rows=slice(0, self.cfg.hessian_subset))
        return self._pool_batch, self._subset

    def job_flops(self, num_targets: int) -> float:
        """Modelled FLOPs of one job on ``num_targets`` targets (module docstring)."""
        c = self.cfg
        return job_flops(c.variant, self.forward, num_params=self.num_params, top_k=c.top_k,
                         hessian_subset=c.hessian_subset, pool_size=self.pool_size, num_targets=num_targets,
                         samples=c.samples, steps=c.steps)

    def compute_us(self, num_targets: int) -> int:
        """Modelled compute time of one job at ``network_gflops`` [us]; known before ``run``."""
        return self._us(self.job_flops(num_targets))

    def _us(self, flops: float) -> int:
        return int(math.ceil(flops / (self.cfg.network_gflops * 1e9) * 1e6))

    def targeted_config(self, rng: np.random.Generator):
        from models.deeprx.influence import InfluenceConfig
        from models.deeprx.targeted import TargetedConfig

        c = self.cfg
        top_k = c.top_k if c.variant != "random" else 1
        influence = InfluenceConfig(top_k=top_k, seed=int(rng.integers(2 ** 31)))
        return TargetedConfig(variant=c.variant, score=c.score, loss=c.loss, num_samples=c.samples, steps=c.steps,
                              learning_rate=c.learning_rate, optimizer=c.optimizer, influence=influence)

    def run(self, weights: Sequence[np.ndarray], targets: dict[str, np.ndarray], rng: np.random.Generator) -> JobResult:
        from models.deeprx.data import to_batch
        from models.deeprx.targeted import TargetedFineTuner

        tcfg = self.targeted_config(rng)
        pool, subset = self._batches()
        tuner = TargetedFineTuner(self.model, list(weights), pool, subset, tcfg.influence,
                                  pool_index=self.pool_arrays["index"])
        res = tuner.run(to_batch(targets, self.width, self.model.config.dtype), tcfg, rng)
        flops = self.job_flops(len(targets["index"]))
        wbytes = 4 * self.num_params
        state = 3 * wbytes                                             # weights, gradient, moments or update
        if tcfg.variant != "random":                                   # eigenbasis and projected pool, float64
            state += 8 * tuner.num_eigen * (self.num_params + self.pool_size)
        return JobResult(res.weights, np.asarray(res.chosen_index), res.target_loss_before, res.target_loss_after,
                         self._us(flops), flops, state)
