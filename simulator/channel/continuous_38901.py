"""Sionna's 38.901 CDL, UMi and UMa models, generated chunk by chunk: one realisation of a whole run,
any stretch of its samples on demand, so a run's channel needs memory for a chunk, not for its duration.

Why not the models' own call alone: it draws the UE's direction (CDL), the clusters and rays
(UMi/UMa), the rays' random coupling and their initial phases (step 10 of 38.901 7.5) and evaluates
them from t = 0 in the same call, so a realisation cannot be continued and a long run had to be drawn
whole (~8 kB per sample and antenna pair at the peak: 5.3 GB for 20,000 slots of a 4x8 array).
``ContinuousModel`` keeps the model and Sionna's own code and changes two things: every call starts
Sionna's generator (``sionna.phy.config.tf_rng``, the only one these models draw from) from the state
it had before the first call, so each call draws the first call's numbers, and the generator is left
as the first call left it; and the sample times are the absolute ``(start + k) / fs`` instead of
``k / fs``. The first call consumes the generator exactly as the whole-run call did. Chunk values
equal the whole-run call's bit for bit when the chunks start at multiples of 64 samples and the last
one ends at the run's end (Eigen's vectorised kernels then treat every value in the same SIMD lane
as the whole-run call does; tested).

Sionna 1.2.x internal used (no public hook exists): the models' ``_cir_sampler``, the
ChannelCoefficientsGenerator whose ``_step_10`` draws the phases and ``_step_11`` evaluates them.
"""
from __future__ import annotations

import tensorflow as tf


class _OffsetSampler:
    """Stands in for a model's ChannelCoefficientsGenerator: its call with the sample times
    start .. start + n - 1 over fs (Sionna's: 0 .. n - 1)."""

    def __init__(self, generator):
        self.generator = generator
        self.start = 0

    def __call__(self, num_time_samples, sampling_frequency, k_factor, rays, topology, c_ds=None):
        g = self.generator
        sample_times = tf.range(self.start, self.start + num_time_samples, dtype=g.rdtype) / sampling_frequency
        phi = g._step_10(tf.shape(rays.aoa))                                    # Sionna's order of draws
        return g._step_11(phi, topology, k_factor, rays, sample_times, c_ds)


class ContinuousModel:
    """A Sionna CDL, UMi or UMa model (UMi/UMa: its topology set; batch 1) whose calls all sample one
    realisation.

    __call__(start, num_time_samples, sampling_frequency) -> the model's own outputs (a [1, 1, rx_ant,
    1, tx_ant, paths, num_time_samples] complex, tau, and the rays if the model returns them) for the
    samples start .. start + num_time_samples - 1. The first call draws the realisation, whatever its
    ``start``; use the same ``sampling_frequency`` in every call."""

    def __init__(self, model):
        from sionna.phy.channel.tr38901 import CDL
        from sionna.phy.channel.tr38901.system_level_channel import SystemLevelChannel

        if not isinstance(model, (CDL, SystemLevelChannel)):
            raise TypeError(f"{type(model).__name__} is not a Sionna CDL, UMi or UMa model")
        if getattr(model, "_always_generate_lsp", False):
            raise ValueError("ContinuousModel needs the large-scale parameters drawn once (always_generate_lsp=False)")
        self.model = model
        self._sampler = _OffsetSampler(model._cir_sampler)
        model._cir_sampler = self._sampler
        self._state_before = None          # the generator's state before the first call
        self._state_after = None           # and after it

    def __call__(self, start: int, num_time_samples: int, sampling_frequency: float):
        from sionna.phy import config

        if start < 0 or num_time_samples < 1:
            raise ValueError(f"need start >= 0 and num_time_samples >= 1, got {start}, {num_time_samples}")
        rng = config.tf_rng
        if self._state_before is None:
            self._state_before = tf.identity(rng.state)
        else:
            resume = tf.identity(rng.state)
            rng.reset(self._state_before)
        self._sampler.start = int(start)
        try:
            if hasattr(self.model, "_lsp_sampler"):                            # UMi / UMa: no batch size
                return self.model(num_time_samples, sampling_frequency)
            return self.model(1, num_time_samples, sampling_frequency)
        finally:
            self._sampler.start = 0
            if self._state_after is None:
                self._state_after = tf.identity(rng.state)
            else:
                if not bool(tf.reduce_all(rng.state == self._state_after)):
                    raise RuntimeError("the channel model drew a different amount of random numbers than in its first call")
                rng.reset(resume)
