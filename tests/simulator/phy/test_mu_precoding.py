"""Known answers of MU-MIMO RZF precoding and its post-precoding SINR (simulator/phy/mu_precoding.py)."""
from __future__ import annotations

import numpy as np
import pytest

from simulator.phy.mu_precoding import effective_rows, held_gain, mu_sinr, precoded_channels, rzf_precoder
from simulator.phy.precoding import dominant_precoder, layer_sinr, post_precoding_sinr, precoded_gain, precoder_of_sc
from tests.simulator.phy.test_precoding import rayleigh, within_ci


def held_rows(h_hat: np.ndarray, subband_sc: int) -> np.ndarray:
    """h_hat [..., K, ue, gnb, sc] -> the effective rows [..., S, K, gnb] of its dominant directions."""
    w = dominant_precoder(h_hat, np.arange(h_hat.shape[-1]) // subband_sc)
    return effective_rows(w, held_gain(h_hat, w, subband_sc))


def joint_lmmse_reference(g: np.ndarray, snr_db) -> np.ndarray:
    """Stream k's SINR of a joint LMMSE over all K streams at UE k, ``layer_sinr`` of sqrt(K) G_k (unit-norm
    columns, the power split over the K layers): g [K, ue, K, sc], snr_db float or [K] -> [K, sc]."""
    num_ues = g.shape[0]
    snr = np.broadcast_to(np.asarray(snr_db, dtype=float), (num_ues,))
    return np.stack([layer_sinr(np.sqrt(num_ues) * g[k], snr[k])[k] for k in range(num_ues)])


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
@pytest.mark.parametrize("num_ues, ue_ant", [(2, 1), (4, 1), (4, 2)])
def test_ideal_csi_with_many_antennas_removes_interference(num_ues, ue_ant, snr_db):
    """Ideal CSI flat within each subband, 64 antennas, i.i.d. Rayleigh: the RZF SINR is within 0.5 dB
    of the same precoder's interference-free value snr ||H_k w_k||^2 (cross terms zeroed), per RE and in
    the mean; the matched filter (alpha -> inf) on the same channels is not."""
    rng = np.random.default_rng(int(snr_db) + 10 * num_ues + ue_ant)
    gnb_ant, num_sb, sb_len = 64, 50, 4
    h = np.repeat(rayleigh(rng, (num_ues, ue_ant, gnb_ant, num_sb)), sb_len, axis=-1)
    rows = held_rows(h, sb_len)

    def loss_db(w: np.ndarray) -> tuple[np.ndarray, float]:
        g = precoded_channels(h, w, sb_len)
        sinr = mu_sinr(g, snr_db)
        free = 10 ** (snr_db / 10) * (np.abs(np.einsum("kuks->kus", g)) ** 2).sum(axis=1)    # [K, sc]
        return 10 * np.log10(free / sinr), float(10 * np.log10(free.mean() / sinr.mean()))

    per_re, mean = loss_db(rzf_precoder(rows, snr_db))
    assert (per_re > -1e-9).all() and per_re.max() < 0.5 and mean < 0.5
    _, mean_mrt = loss_db(rzf_precoder(rows, snr_db, alpha=1e12))
    assert mean_mrt > 0.5 + (snr_db > 0) * 3.0


@pytest.mark.parametrize("gnb_ant, num_ues, nmse", [(32, 4, 0.1), (32, 4, 0.5), (64, 2, 0.25), (8, 4, 0.1)])
def test_residual_interference_of_zf_on_held_csi_with_error(gnb_ant, num_ues, nmse):
    """Held CSI h_hat = h + e, h ~ CN(0, I), e ~ CN(0, s I) independent (NMSE s), one UE antenna,
    one subcarrier per subband, zero-forcing on h_hat with ||w_j||^2 = 1/K.

    Given h_hat, h is Gaussian with mean h_hat / (1 + s) and covariance s / (1 + s) I:
    h_k = h_hat_k / (1 + s) + d_k, d_k ~ CN(0, s / (1 + s) I) independent of h_hat, hence of W.
    ZF makes h_hat_k^H w_j = 0 (j != k), so h_k^H w_j = d_k^H w_j and
    E[|h_k^H w_j|^2 | h_hat] = s / (1 + s) ||w_j||^2 = s / ((1 + s) K): the residual interference at
    UE k, sum over the K - 1 other streams, has mean (K - 1) s / ((1 + s) K) (times snr at the receiver).
    (The naive E|e^H w_j|^2 = s ||w_j||^2 ignores that W is built from h + e; the test tells them apart.)"""
    rng = np.random.default_rng(gnb_ant + num_ues)
    num_sc = 2000
    h = rayleigh(rng, (num_ues, 1, gnb_ant, num_sc))
    h_hat = h + rayleigh(rng, h.shape, nmse)
    w_zf = rzf_precoder(held_rows(h_hat, 1), 10.0, alpha=0.0)
    g = precoded_channels(h, w_zf, 1)[:, 0]                                                # [K, K, sc]
    g_hat = precoded_channels(h_hat, w_zf, 1)[:, 0]
    others = (1 - np.eye(num_ues))[:, :, None]
    np.testing.assert_allclose((np.abs(g_hat) ** 2 * others).sum(axis=1), 0.0, atol=1e-20)   # ZF on what it holds
    interference = (np.abs(g) ** 2 * others).sum(axis=1).ravel()                             # [K * sc]
    assert within_ci(interference, (num_ues - 1) * nmse / ((1 + nmse) * num_ues))
    assert not within_ci(interference, (num_ues - 1) * nmse / num_ues)
    # and the SINR sees exactly that interference: snr |g_kk|^2 / (1 + snr I_k)
    snr = 10.0
    desired = np.abs(np.einsum("kks->ks", g)) ** 2
    np.testing.assert_allclose(mu_sinr(precoded_channels(h, w_zf, 1), 10.0),
                               snr * desired / (1 + snr * interference.reshape(num_ues, num_sc)), rtol=1e-10)


@pytest.mark.parametrize("ue_ant", [1, 2])
def test_one_ue_is_the_su_precoder_and_its_sinr(ue_ant):
    """K = 1: W is the held direction (||w|| = 1) and the SINR is the SU path's, ``post_precoding_sinr``
    (snr ||H w||^2) and ``layer_sinr`` of one layer; subbands of 5 subcarriers, the last one shorter."""
    rng = np.random.default_rng(ue_ant)
    num_sc, sb_len, snr_db = 23, 5, 7.0
    subband_of_sc = np.arange(num_sc) // sb_len
    h = rayleigh(rng, (1, ue_ant, 16, num_sc))
    w = dominant_precoder(h, subband_of_sc)                                    # [1, 5, 16]
    big_w = rzf_precoder(effective_rows(w, held_gain(h, w, sb_len)), snr_db)   # [5, 16, 1]
    np.testing.assert_allclose(big_w[..., 0], w[0], atol=1e-12)
    g = precoded_channels(h, big_w, sb_len)                                    # [1, ue, 1, sc]
    w_sc = precoder_of_sc(w[0], subband_of_sc)
    sinr = mu_sinr(g, snr_db)
    assert sinr.shape == (1, num_sc) and sinr.dtype == np.float64
    np.testing.assert_allclose(sinr[0], post_precoding_sinr(h[0], w_sc, snr_db), rtol=1e-10)
    np.testing.assert_allclose(sinr[0], layer_sinr(g[0], snr_db)[0], rtol=1e-10)
    # held_gain is the subband mean of ||H w||^2
    gain = precoded_gain(h[0], w_sc)
    np.testing.assert_allclose(held_gain(h, w, sb_len)[0], [gain[s * sb_len:(s + 1) * sb_len].mean() for s in range(5)],
                               rtol=1e-12)


@pytest.mark.parametrize("ue_ant", [1, 2, 3])
def test_sinr_is_stream_k_of_the_joint_lmmse(ue_ant):
    """Any precoder, per-UE SNRs: the whitened-interference LMMSE SINR of UE k's stream equals stream k's
    SINR of a joint LMMSE over all K streams (``layer_sinr``); one UE antenna is the scalar closed form."""
    rng = np.random.default_rng(20 + ue_ant)
    num_ues, gnb_ant, num_sc, sb_len = 4, 8, 28, 6                           # the last subband shorter
    h = rayleigh(rng, (num_ues, ue_ant, gnb_ant, num_sc))
    w = rayleigh(rng, (5, gnb_ant, num_ues))
    w /= np.sqrt(num_ues) * np.linalg.norm(w, axis=-2, keepdims=True)
    snr_db = np.array([-3.0, 5.0, 12.0, 20.0])
    g = precoded_channels(h, w, sb_len)
    np.testing.assert_allclose(g, np.einsum("kugs,sgj->kujs", h, w[np.arange(num_sc) // sb_len]), rtol=1e-12)
    sinr = mu_sinr(g, snr_db)
    np.testing.assert_allclose(sinr, joint_lmmse_reference(g, snr_db), rtol=1e-9)
    if ue_ant == 1:
        p = np.abs(g[:, 0]) ** 2                                               # [k, j, sc]
        snr = 10 ** (snr_db / 10)[:, None]
        own = np.einsum("kks->ks", p)
        np.testing.assert_allclose(sinr, snr * own / (1 + snr * (p.sum(axis=1) - own)), rtol=1e-10)


def test_rzf_equals_sionna_rzf_precoding_matrix():
    """Sionna's closed form (Cholesky, unit-norm columns) on the rows scaled by sqrt(snr_k), alpha = K, the
    columns scaled by 1/sqrt(K); with equal SNRs, Sionna's on the rows themselves with alpha = K / snr."""
    from sionna.phy.mimo import rzf_precoding_matrix

    rng = np.random.default_rng(7)
    num_ues = 4
    rows = rayleigh(rng, (3, 13, num_ues, 32))
    snr_db = np.array([[0.0, 5.0, 10.0, 20.0], [3.0, 3.0, 3.0, 3.0], [-5.0, 15.0, 8.0, 1.0]])   # [batch, K]
    snr = 10 ** (snr_db / 10)
    ref = rzf_precoding_matrix(np.sqrt(snr)[:, None, :, None] * rows, alpha=float(num_ues), precision="double")
    np.testing.assert_allclose(rzf_precoder(rows, snr_db), ref.numpy() / np.sqrt(num_ues), atol=1e-10)
    ref_equal = rzf_precoding_matrix(rows, alpha=num_ues / 10 ** 0.7, precision="double")
    np.testing.assert_allclose(rzf_precoder(rows, 7.0), ref_equal.numpy() / np.sqrt(num_ues), atol=1e-10)
    ref_zf = rzf_precoding_matrix(rows, alpha=0.0, precision="double")
    np.testing.assert_allclose(rzf_precoder(rows, 7.0, alpha=0.0), ref_zf.numpy() / np.sqrt(num_ues), atol=1e-10)
    w = rzf_precoder(rows, snr_db)
    np.testing.assert_allclose(np.linalg.norm(w, axis=-2), 1 / np.sqrt(num_ues), rtol=1e-12)   # power split


def test_batch_invariant_and_deterministic():
    """Leading batch axes (PRB groups, drops) give each item's own result bit for bit, and a rerun the same
    bytes; complex64 channels are precoded in single precision."""
    rng = np.random.default_rng(9)
    num_ues, sb_len = 4, 48
    for ue_ant in (1, 2):
        h = rayleigh(rng, (3, num_ues, ue_ant, 32, 624)).astype(np.complex64)
        rows = held_rows(h, sb_len)                                            # [3, 13, K, 32]
        snr_db = np.array([[4.0, 9.0, 14.0, 0.0]] * 3)
        w = rzf_precoder(rows, snr_db)
        g = precoded_channels(h, w, sb_len)
        assert g.dtype == np.complex64
        sinr = mu_sinr(g, snr_db)
        assert sinr.shape == (3, num_ues, 624)
        assert sinr.tobytes() == mu_sinr(precoded_channels(h.copy(), rzf_precoder(rows.copy(), snr_db), sb_len),
                                         snr_db).tobytes()
        for b in range(3):
            assert np.array_equal(rzf_precoder(rows[b], snr_db[b]), w[b])
            assert np.array_equal(mu_sinr(precoded_channels(h[b], w[b], sb_len), snr_db[b]), sinr[b])
        np.testing.assert_allclose(sinr, mu_sinr(precoded_channels(h.astype(complex), w, sb_len), snr_db), rtol=1e-4)


def test_refusals_and_a_zero_row():
    rng = np.random.default_rng(11)
    rows = rayleigh(rng, (2, 5, 4))                                            # K = 5 > 4 antennas
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        rzf_precoder(rows, 10.0, alpha=0.0)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        rzf_precoder(rows[:, :3], 10.0, alpha=-1.0)
    assert np.isfinite(rzf_precoder(rows, 10.0)).all()                         # regularised: any K
    rows[:, 1] = 0                                                             # a UE with nothing held
    w = rzf_precoder(rows, 10.0)
    np.testing.assert_array_equal(w[..., 1], 0)
    np.testing.assert_allclose(np.linalg.norm(w[..., [0, 2, 3, 4]], axis=-2), 1 / np.sqrt(5), rtol=1e-12)
    with pytest.raises(ValueError, match=r"w must be \[..., 2, 4, 5\]"):
        precoded_channels(rayleigh(rng, (5, 1, 4, 10)), w[:1], 5)


@pytest.mark.parametrize("alpha", [None, 0.0, 0.3])
def test_padded_sets_equal_their_unpadded_rzf(alpha):
    """Sets of 1..4 UEs padded with zero rows to 4 (``num_streams``): each set's W is that of its own rows
    (its alpha and power split are its own K's) and the pads' columns are zero."""
    rng = np.random.default_rng(12)
    rows = rayleigh(rng, (4, 3, 4, 8))                                         # [sets, S, 4, gnb]
    sizes = np.array([1, 2, 3, 4])
    padded = rows.copy()
    for i, k in enumerate(sizes):
        padded[i, :, k:] = 0
    w = rzf_precoder(padded, 5.0, alpha=alpha, num_streams=sizes[:, None])
    for i, k in enumerate(sizes):
        np.testing.assert_allclose(w[i, ..., :k], rzf_precoder(rows[i, :, :k], 5.0, alpha=alpha), rtol=1e-10,
                                   atol=1e-14)
        np.testing.assert_array_equal(w[i, ..., k:], 0)
