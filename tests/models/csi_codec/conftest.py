"""Fixtures for the CSI codec tests: synthetic few-path CSI and a DeepFactorized density fitted
to known distributions (both small enough for the default suite)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models.csi_codec.entropy import DeepFactorized

# the densities the fitted entropy model learns: channel 0 Laplace(scale 2), channel 1 N(1, 4^2)
LAPLACE_SCALE, GAUSS_MEAN, GAUSS_STD = 2.0, 1.0, 4.0


def few_path_csi(rng: np.random.Generator, batch: int, num_ant: int = 32, num_sc: int = 32,
                 paths: int = 3) -> np.ndarray:
    """x [batch, num_ant, num_sc, 2]: a ULA (half-wavelength) x OFDM response of ``paths`` plane
    waves with random angles, delays (up to a quarter of the symbol) and complex gains, scaled to
    unit mean power per entry. Structured (low rank) like real CSI, so a codec can learn it."""
    a = np.arange(num_ant)[None, :, None]
    s = np.arange(num_sc)[None, None, :]
    h = np.zeros((batch, num_ant, num_sc), np.complex128)
    for _ in range(paths):
        theta = rng.uniform(-np.pi / 3, np.pi / 3, (batch, 1, 1))
        tau = rng.uniform(0, 0.25, (batch, 1, 1))           # delay x subcarrier spacing
        g = (rng.normal(size=(batch, 1, 1)) + 1j * rng.normal(size=(batch, 1, 1))) / np.sqrt(2 * paths)
        h += g * np.exp(-1j * np.pi * a * np.sin(theta)) * np.exp(-2j * np.pi * s * tau)
    h /= np.sqrt(np.mean(np.abs(h) ** 2, axis=(1, 2), keepdims=True))
    return np.stack([h.real, h.imag], axis=-1).astype(np.float32)


TINY_LMBDA = 1000.0


def save_tiny_codec(path) -> str:
    """An 8x8 conv_csi codec with 8 filters, briefly RD-trained on one-path CSI (~6 s), saved at
    ``path`` with its training lambda (what the online schemes read)."""
    from models.csi_codec.model import ConvCsiCodec, ConvCsiConfig
    from models.csi_codec.train import RdTrainer

    codec = ConvCsiCodec(ConvCsiConfig(num_ant=8, num_sc=8, filters=8), seed=1)
    RdTrainer(codec, TINY_LMBDA, 3e-3).run(few_path_csi(np.random.default_rng(0), 512, 8, 8, paths=1), 600, 32,
                                           np.random.default_rng(0))
    return str(codec.save(path, training={"lmbda": TINY_LMBDA}))


def sample_known(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Samples [..., 2] of the two known channel densities (continuous)."""
    x0 = rng.laplace(0.0, LAPLACE_SCALE, shape)
    x1 = rng.normal(GAUSS_MEAN, GAUSS_STD, shape)
    return np.stack([x0, x1], axis=-1).astype(np.float32)


@pytest.fixture(scope="session")
def fitted_density() -> DeepFactorized:
    """DeepFactorized fitted by maximum likelihood to noisy samples of the known densities
    (uniform noise, as the codec trains), 1500 Adam steps: ~5 s on 2 cores."""
    rng = np.random.default_rng(5)
    ef = DeepFactorized(2, rng=rng)
    opt = tf.keras.optimizers.Adam(0.02)

    @tf.function
    def step(y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(ef.bits(y))
        opt.apply_gradients(zip(tape.gradient(loss, ef.parameters), ef.parameters))
        return loss

    for _ in range(1500):
        y = sample_known(rng, (256, 8)) + rng.uniform(-0.5, 0.5, (256, 8, 2)).astype(np.float32)
        step(tf.constant(y[:, :, None, :]))
    return ef
