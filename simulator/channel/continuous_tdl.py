"""Sionna's 38.901 TDL model, generated chunk by chunk: one realisation of a whole run, any stretch of
its samples on demand, so a run's channel needs memory for a chunk, not for its duration.

Why not Sionna's ``TDL.__call__`` alone: it draws the sum-of-sinusoids' random Doppler, angles and
phases and evaluates them from t = 0 in the same call, so a realisation cannot be continued; a
600 s run had to be drawn whole (~10 kB per slot and antenna pair at the peak, 12 GB for the
quickstart). ``ContinuousTDL`` is Sionna's class with its ``__call__`` split in two: ``draw`` takes
the random numbers once, from ``sionna.phy.config.tf_rng`` in Sionna's order and shapes, and
``evaluate(start, n)`` computes Sionna's expressions (the eq. numbers are its docstring's) at the
absolute sample times ``(start + k) / fs``. The body follows ``sionna.phy.channel.tr38901.TDL``
(Sionna 1.2.x, Apache-2.0, NVIDIA); spatial correlation, which airtune does not use, is refused.
The result equals ``TDL.__call__(1, N, fs)`` bit for bit for any chunking (tested).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from sionna.phy import PI, config
from sionna.phy.channel.tr38901 import TDL
from sionna.phy.utils import insert_dims


class ContinuousTDL(TDL):
    """``TDL(...)`` with ``draw()`` then ``evaluate(start, num_time_steps, sampling_frequency)``, batch 1.

    evaluate -> (a [1, 1, rx_ant, 1, tx_ant, paths, num_time_steps] complex, tau [1, 1, 1, paths] s),
    Sionna's layout, for the samples start .. start + num_time_steps - 1 of the drawn realisation."""

    def draw(self) -> None:
        """The realisation's random numbers, in the order and shapes of ``TDL.__call__`` (batch 1)."""
        if (self._spatial_corr_mat_sqrt is not None or self._rx_corr_mat_sqrt is not None
                or self._tx_corr_mat_sqrt is not None):
            raise ValueError("ContinuousTDL does not support spatial correlation")
        rng, rd = config.tf_rng, self.rdtype
        self._doppler = rng.uniform([1, 1, 1, 1, 1, 1, 1, 1], self._min_doppler, self._max_doppler, rd)
        self._theta = rng.uniform([1, 1, 1, 1, 1, self._num_clusters, 1, self._num_sinusoids],
                                  -PI / tf.cast(self._num_sinusoids, rd), PI / tf.cast(self._num_sinusoids, rd), rd)
        self._phi = rng.uniform([1, 1, self._num_rx_ant, 1, self._num_tx_ant, self._num_clusters, 1,
                                 self._num_sinusoids], -PI, PI, rd)
        self._phi_0 = rng.uniform([1, 1, 1, 1, 1, 1, 1], -PI, PI, rd) if self._los else None

    def evaluate(self, start: int, num_time_steps: int, sampling_frequency: float):
        if not hasattr(self, "_doppler"):
            raise RuntimeError("call draw() first")
        rd = self.rdtype
        sample_times = tf.range(start, start + num_time_steps, dtype=rd) / sampling_frequency
        sample_times = tf.expand_dims(insert_dims(sample_times, 6, 0), -1)
        doppler = self._doppler
        alpha = self._alpha_const + self._theta                                            # eq. (7)
        argument = doppler * sample_times * tf.cos(alpha) + self._phi                     # eq. (6a)-(6c)
        h = tf.complex(tf.cos(argument), tf.sin(argument))
        normalization_factor = 1. / tf.sqrt(tf.cast(self._num_sinusoids, rd))
        h = tf.complex(normalization_factor, tf.constant(0., rd)) * tf.reduce_sum(h, axis=-1)
        mean_powers = tf.expand_dims(insert_dims(self._mean_powers, 5, 0), -1)
        h = tf.sqrt(mean_powers) * h
        if self._los:                                                                      # eq. (11): Rician first tap
            doppler = tf.squeeze(doppler, axis=-1)
            sample_times = tf.squeeze(sample_times, axis=-1)
            arg_spec = doppler * sample_times * tf.cos(self._los_angle_of_arrival) + self._phi_0
            h_spec = tf.complex(tf.cos(arg_spec), tf.sin(arg_spec))
            h = tf.concat([h_spec * tf.sqrt(self._los_power) + h[:, :, :, :, :, :1, :], h[:, :, :, :, :, 1:, :]],
                          axis=5)
        delays = self._delays * self._delay_spread if self._scale_delays else self._delays * 1e-9
        delays = insert_dims(delays, 3, 0)
        return h, delays


def path_gains(model: ContinuousTDL, start: int, stop: int, sampling_frequency: float) -> np.ndarray:
    """[stop - start, rx_ant, tx_ant, paths] complex64 path gains of samples start .. stop - 1."""
    a, _ = model.evaluate(start, stop - start, sampling_frequency)
    return np.ascontiguousarray(tf.transpose(a[0, 0, :, 0], [3, 0, 1, 2]).numpy())
