"""Known answers of the SU precoder and its post-precoding SINR (simulator/phy/precoding.py)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.phy.base import per_re_sinr
from simulator.phy.precoding import (dominant_precoder, eigen_precoder, layer_sinr, nmse_db, post_precoding_sinr,
                                     precoded_gain, precoder_of_sc, precoding_loss_db, sgcs)


def rayleigh(rng: np.random.Generator, shape, power: float = 1.0) -> np.ndarray:
    """i.i.d. CN(0, power) entries."""
    return np.sqrt(power / 2) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def expected_sgcs(num_tx: int, nmse: float) -> float:
    """E[SGCS] of the rank-1 precoders of h ~ CN(0, I_N) and h_hat = h + e, e ~ CN(0, s I_N).

    Along h, h_hat has |(||h|| + a)|^2 =: X with a ~ CN(0, s), across it ||e_perp||^2 =: Y ~
    s Gamma(N-1); SGCS = X / (X + Y), X and Y independent. With E[X/(X+Y)] =
    int_0^inf E[X e^{-tX}] E[e^{-tY}] dt, E[e^{-tX}] = (1+st)^(N-1) (1+(1+s)t)^(-N) (||h||^2 ~
    Gamma(N)) and E[e^{-tY}] = (1+st)^(1-N), substituting v = 1/(1+(1+s)t):
        E[SGCS] = 1 - (N-1) s int_0^1 v^(N-1) / (v + s) dv
    (1 at s = 0 or N = 1, 1/N as s -> inf; 1 - s for small s)."""
    x, wts = np.polynomial.legendre.leggauss(200)
    v = 0.5 * (x + 1.0)
    return float(1.0 - (num_tx - 1) * nmse * 0.5 * np.sum(wts * v ** (num_tx - 1) / (v + nmse)))


def within_ci(samples: np.ndarray, expected: float, z: float = 4.0) -> bool:
    """The sample mean is within z standard errors of the expectation."""
    return abs(samples.mean() - expected) <= z * samples.std(ddof=1) / np.sqrt(samples.size)


def svd_reference(h: np.ndarray, subband_of_sc: np.ndarray) -> np.ndarray:
    """Per batch item and subband: the first right singular vector of the stacked rows, phase-fixed."""
    *batch, _, gnb_ant, _ = h.shape
    flat = h.reshape(-1, *h.shape[-3:])
    out = np.empty((len(flat), subband_of_sc.max() + 1, gnb_ant), complex)
    for b, hb in enumerate(flat):
        for s in range(out.shape[1]):
            rows = np.moveaxis(hb[..., subband_of_sc == s], -1, 0).reshape(-1, gnb_ant)
            v = np.linalg.svd(rows)[2][0].conj()
            out[b, s] = v * np.exp(-1j * np.angle(v[0]))
    return out.reshape(*batch, out.shape[1], gnb_ant)


@pytest.mark.parametrize("num_tx", [1, 8, 32])
def test_ideal_csi_gains_num_tx_over_one_antenna(num_tx):
    """One UE antenna, i.i.d. Rayleigh flat within each subband: E||h w||^2 = N_t exactly, so
    the mean SINR gains 10 log10(N_t) dB over one antenna (SNR defined as in per_re_sinr)."""
    rng = np.random.default_rng(num_tx)
    num_ues, num_sb, sb_len, snr_db = 400, 8, 4, 3.0
    subband_of_sc = np.repeat(np.arange(num_sb), sb_len)
    h = np.repeat(rayleigh(rng, (num_ues, 1, num_tx, num_sb)), sb_len, axis=-1)
    w = dominant_precoder(h, subband_of_sc)
    snr = 10 ** (snr_db / 10)
    precoded = post_precoding_sinr(h, precoder_of_sc(w, subband_of_sc), snr_db)[..., ::sb_len] / snr
    single = per_re_sinr(np.abs(h[:, 0, 0, ::sb_len]) ** 2, snr_db) / snr
    assert within_ci(precoded, num_tx) and within_ci(single, 1.0)
    gain_db = 10 * np.log10(precoded.mean() / single.mean())
    assert abs(gain_db - 10 * np.log10(num_tx)) < 0.5
    if num_tx > 1:                                   # a random unit precoder gains nothing
        w_rand = rayleigh(rng, w.shape)
        w_rand /= np.linalg.norm(w_rand, axis=-1, keepdims=True)
        assert within_ci(precoded_gain(h, precoder_of_sc(w_rand, subband_of_sc))[..., ::sb_len], 1.0)
        assert not within_ci(precoded_gain(h, precoder_of_sc(w_rand, subband_of_sc))[..., ::sb_len], num_tx)


@pytest.mark.parametrize("ue_ant, gnb_ant, sizes", [
    (2, 8, [12, 12, 12, 4]),        # covariance path (L*ue >= gnb_ant), short last subband
    (1, 16, [4, 4, 4, 3]),          # Gram path (L*ue < gnb_ant)
    (2, 4, [1, 1, 1]),              # one subcarrier per subband
])
def test_dominant_precoder_matches_svd(ue_ant, gnb_ant, sizes):
    rng = np.random.default_rng(1)
    subband_of_sc = np.repeat(np.arange(len(sizes)), sizes)
    h = rayleigh(rng, (3, ue_ant, gnb_ant, len(subband_of_sc)))
    w = dominant_precoder(h, subband_of_sc)
    assert w.shape == (3, len(sizes), gnb_ant) and w.dtype == np.complex128
    np.testing.assert_allclose(w, svd_reference(h, subband_of_sc), atol=1e-9)
    # complex64 channels (the sources') are multiplied in single precision
    w64 = dominant_precoder(h.astype(np.complex64), subband_of_sc)
    assert w64.dtype == np.complex128
    np.testing.assert_allclose(w64, svd_reference(h.astype(np.complex64).astype(complex), subband_of_sc), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(w, axis=-1), 1.0, atol=1e-12)
    assert (w[..., 0].imag == 0).all() and (w[..., 0].real >= 0).all()
    # the subcarriers of a subband need not be contiguous
    perm = rng.permutation(len(subband_of_sc))
    np.testing.assert_allclose(dominant_precoder(h[..., perm], subband_of_sc[perm]), w, atol=1e-9)


@pytest.mark.parametrize("ue_ant, gnb_ant, sizes", [(2, 8, [12, 12, 4]), (2, 16, [3, 3])])
def test_two_layer_eigen_precoder_is_the_top_two_right_singular_vectors(ue_ant, gnb_ant, sizes):
    rng = np.random.default_rng(3)
    subband_of_sc = np.repeat(np.arange(len(sizes)), sizes)
    h = rayleigh(rng, (2, ue_ant, gnb_ant, len(subband_of_sc)))
    w = eigen_precoder(h, subband_of_sc, 2)                                 # [2, S, gnb, 2]
    assert w.shape == (2, len(sizes), gnb_ant, 2)
    np.testing.assert_allclose(w[..., 0], dominant_precoder(h, subband_of_sc), atol=1e-12)
    for b in range(2):
        for s_ in range(len(sizes)):
            a = np.moveaxis(h[b][..., subband_of_sc == s_], -1, 0).reshape(-1, gnb_ant)   # rows of the subband
            vh = np.linalg.svd(a)[2]
            for layer in range(2):                                          # same subspace per column
                assert abs(np.vdot(vh[layer].conj(), w[b, s_, :, layer])) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(np.swapaxes(w.conj(), -1, -2) @ w, np.broadcast_to(np.eye(2), w.shape[:-2] + (2, 2)),
                               atol=1e-12)


def test_layer_sinr_closed_forms():
    rng = np.random.default_rng(4)
    g1 = rayleigh(rng, (2, 1, 5))                                           # one layer: snr ||g||^2
    np.testing.assert_allclose(layer_sinr(g1, 10.0)[0], per_re_sinr((np.abs(g1) ** 2).sum(axis=0)[0], 10.0),
                               rtol=1e-12)
    # orthogonal layers (G = diag(a, b) per RE): no inter-layer interference, each gets snr/2 |g_l|^2
    a, b = rayleigh(rng, (5,)), rayleigh(rng, (5,))
    g = np.zeros((2, 2, 5), complex)
    g[0, 0], g[1, 1] = a, b
    np.testing.assert_allclose(layer_sinr(g, 20.0), 50.0 * np.abs(np.stack([a, b])) ** 2, rtol=1e-12)
    # a rank-deficient pair (the same column twice) leaves each layer the other's interference:
    # SINR = rho |g|^2 / (1 + rho |g|^2) < 1
    gg = np.repeat(g1, 2, axis=1)
    rho_g = 5.0 * (np.abs(g1) ** 2).sum(axis=0)[0]
    np.testing.assert_allclose(layer_sinr(gg, 10.0), np.stack([rho_g / (1 + rho_g)] * 2), rtol=1e-9)


def test_single_rx_sinr_and_loss_closed_form():
    """One UE antenna, H = h^H: sinr = snr |h^H w|^2 and loss = ||h||^2 / |h^H w|^2, any unit w."""
    rng = np.random.default_rng(2)
    h_row = rayleigh(rng, (5, 1, 8, 24))
    w = rayleigh(rng, (5, 8, 24))
    w /= np.linalg.norm(w, axis=-2, keepdims=True)
    snr_db = np.array([-5.0, 0.0, 3.0, 10.0, 20.0])
    h_vec = h_row[:, 0].conj()                                     # [5, 8, 24]
    closed = np.abs(np.sum(h_vec.conj() * w, axis=-2)) ** 2        # |h^H w|^2
    np.testing.assert_allclose(post_precoding_sinr(h_row, w, snr_db), 10 ** (snr_db[:, None] / 10) * closed,
                               rtol=1e-12)
    np.testing.assert_allclose(precoding_loss_db(h_row, w),
                               -10 * np.log10(closed / np.sum(np.abs(h_vec) ** 2, axis=-2)), atol=1e-9)


def test_per_re_eigen_beamformer_has_no_loss():
    """Ideal CSI, one subcarrier per subband, two UE antennas: w is the per-RE optimum."""
    rng = np.random.default_rng(3)
    h = rayleigh(rng, (4, 2, 8, 10))
    sb = np.arange(10)
    loss = precoding_loss_db(h, precoder_of_sc(dominant_precoder(h, sb), sb))
    np.testing.assert_allclose(loss, 0.0, atol=1e-9)
    wide = precoder_of_sc(dominant_precoder(h, sb // 5), sb // 5)      # two 5-subcarrier subbands
    assert (precoding_loss_db(h, wide) > -1e-9).all() and precoding_loss_db(h, wide).mean() > 0.1


@pytest.mark.parametrize("num_tx, nmse", [(4, 0.1), (32, 0.1), (32, 1.0)])
def test_sgcs_and_loss_under_estimation_error_match_closed_form(num_tx, nmse):
    rng = np.random.default_rng(4)
    num_ues, num_sc = 100, 60
    h = rayleigh(rng, (num_ues, 1, num_tx, num_sc))
    h_hat = h + rayleigh(rng, h.shape, nmse)
    sb = np.arange(num_sc)                                         # i.i.d. subcarriers, one per subband
    w_true, w_hat = dominant_precoder(h, sb), dominant_precoder(h_hat, sb)
    expected = expected_sgcs(num_tx, nmse)
    assert within_ci(sgcs(w_true, w_hat), expected)
    # one UE antenna, w_true the per-RE optimum: the linear loss is 1/SGCS per RE
    loss_lin = 10 ** (-precoding_loss_db(h, precoder_of_sc(w_hat, sb)) / 10)
    np.testing.assert_allclose(loss_lin, sgcs(w_true, w_hat), rtol=1e-9)
    assert abs(nmse_db(h.reshape(1, 1, num_tx, -1), h_hat.reshape(1, 1, num_tx, -1))[0]
               - 10 * np.log10(nmse)) < 0.1
    assert nmse_db(h, h_hat).shape == (num_ues,)


def test_expected_sgcs_limits():
    assert expected_sgcs(1, 0.5) == 1.0
    assert expected_sgcs(8, 1e-12) == pytest.approx(1.0)
    assert expected_sgcs(8, 1e-3) == pytest.approx(1 - 1e-3, rel=1e-4)
    assert expected_sgcs(8, 1e6) == pytest.approx(1 / 8, rel=1e-4)


def test_deterministic_and_batch_invariant():
    rng = np.random.default_rng(5)
    sb = np.repeat(np.arange(13), 48)
    h = rayleigh(rng, (4, 2, 32, 624)).astype(np.complex64)
    w = dominant_precoder(h, sb)
    assert w.tobytes() == dominant_precoder(h.copy(), sb).tobytes()
    w_sc = precoder_of_sc(w, sb)
    sinr = post_precoding_sinr(h, w_sc, 7.0)
    assert sinr.tobytes() == post_precoding_sinr(h.copy(), w_sc.copy(), 7.0).tobytes()
    for ue in range(len(h)):
        assert np.array_equal(dominant_precoder(h[ue], sb), w[ue])
        assert np.array_equal(post_precoding_sinr(h[ue], w_sc[ue], 7.0), sinr[ue])


def test_zero_channel_and_bad_subbands():
    w = dominant_precoder(np.zeros((1, 4, 6), complex), np.repeat([0, 1], 3))
    np.testing.assert_array_equal(w, np.eye(4)[[0, 0]])
    with pytest.raises(ValueError, match="empty"):
        dominant_precoder(np.ones((1, 4, 6)), np.array([0, 0, 2, 2, 2, 2]))
    with pytest.raises(ValueError, match="6 non-negative integers"):
        dominant_precoder(np.ones((1, 4, 6)), np.zeros(5, int))


def test_two_layer_closed_form_equals_the_matrix_inverse():
    rng = np.random.default_rng(6)
    for ue_ant in (2, 4):
        g = rayleigh(rng, (3, ue_ant, 2, 7))
        gs = np.moveaxis(g, -1, -3)                                         # [3, sc, ue, 2]
        inv = np.linalg.inv(np.eye(2) + 10 ** 1.5 / 2 * (np.swapaxes(gs.conj(), -1, -2) @ gs))
        ref = np.moveaxis(1 / np.real(np.diagonal(inv, axis1=-2, axis2=-1)) - 1, -1, -2)
        np.testing.assert_allclose(layer_sinr(g, 15.0), ref, rtol=1e-10)
