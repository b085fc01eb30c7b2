"""Single-user precoding from the channel the gNB holds, and its post-precoding SINR.

The gNB precodes one stream per subband with the dominant eigenvector of the channel it holds
(two layers: the top two, ``eigen_precoder``; their per-layer LMMSE SINR is ``layer_sinr``)
(the reconstructed or reported h_hat); the abstraction evaluates that precoder on the *true*
channel h. SNR is defined as in the single-antenna path (``simulator.phy.base.per_re_sinr``,
``simulator.channel.snr``): ``snr_db`` is the average per-RE SNR of the total transmit power
over a unit-average-power channel per antenna pair, and the precoder splits that power over the
gNB antennas (||w|| = 1 per RE). So the post-equalisation (MRC/LMMSE, one stream) SINR is
snr * ||h w||^2 and, with one UE antenna and ideal CSI on i.i.d. Rayleigh, E||h w||^2 = N_t:
the array gains 10 log10(N_t) dB of mean SNR over one antenna (more than N_t with several UE
antennas: E[lambda_max(H^H H)]).

Cost (tests/benchmarks/bench_precoding.py, one thread, 624 subcarriers, 13 subbands, 1x32):
``dominant_precoder`` is one dense Hermitian eigenproblem per subband, about 0.56 ms (the
eigenproblems are 0.46 ms of it), so it runs when a CSI report arrives, with ``precoder_of_sc``
(16 us); ``post_precoding_sinr`` is the per-slot part (about 23 us).

Sionna's ``rzf_precoding_matrix`` / ``cbf_precoding_matrix`` are not used: they precode each
subcarrier's K x M matrix with one stream per UE antenna (matched filter or regularised ZF, the
MU-MIMO building blocks), not the rank-1 dominant direction of a subband's summed covariance
H^H H; with one UE antenna and one subcarrier per subband both reduce to h^H / ||h||, which
``dominant_precoder`` returns too. They also run in TensorFlow, whose per-call dispatch on
tensors this small costs more than the numpy work here.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from simulator.phy.base import per_re_sinr


def _subband_index(subband_of_sc: np.ndarray, num_subcarriers: int) -> np.ndarray:
    """subband_of_sc [sc] int in 0..S-1 (each subband non-empty) -> idx [S, L] into the
    subcarriers, L the largest subband; shorter subbands are padded with ``num_subcarriers``
    (the index of an appended all-zero subcarrier)."""
    sb = np.asarray(subband_of_sc)
    if sb.shape != (num_subcarriers,) or not np.issubdtype(sb.dtype, np.integer) or sb.min() < 0:
        raise ValueError(f"subband_of_sc must be {num_subcarriers} non-negative integers, "
                         f"got shape {sb.shape} dtype {sb.dtype}")
    counts = np.bincount(sb)
    if (counts == 0).any():
        raise ValueError(f"subband_of_sc leaves subbands {np.flatnonzero(counts == 0).tolist()} empty")
    order = np.argsort(sb, kind="stable")
    pos = np.arange(num_subcarriers) - np.repeat(np.cumsum(counts) - counts, counts)
    idx = np.full((len(counts), counts.max()), num_subcarriers)
    idx[sb[order], pos] = order
    return idx


def _top_eigenvectors(mats: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """mats [n, d, d] Hermitian -> (the k largest eigenvalues [n, k], their unit eigenvectors [n, d, k]),
    largest first.

    LAPACK zheevr asked for the top k eigenpairs only: about half the time of numpy's batched
    ``eigh``, which computes all of them."""
    d = mats.shape[-1]
    lam = np.empty((len(mats), k))
    vec = np.empty((len(mats), d, k), dtype=np.complex128)
    for i, m in enumerate(mats):
        w, z, _, _, info = lapack.zheevr(m, compute_v=1, range="I", il=d - k + 1, iu=d)
        if info != 0:
            raise np.linalg.LinAlgError(f"zheevr failed (info={info}) on subband matrix {i}")
        lam[i], vec[i] = w[:k][::-1], z[:, :k][:, ::-1]
    return lam, vec


def dominant_precoder(h_hat: np.ndarray, subband_of_sc: np.ndarray) -> np.ndarray:
    """Per-subband dominant right singular vector of the held channel (rank-1 SU precoder):
    ``eigen_precoder`` with rank 1, [..., S, gnb_ant]."""
    return eigen_precoder(h_hat, subband_of_sc, 1)[..., 0]


def layered_precoder(h_hat: np.ndarray, subband_of_sc: np.ndarray, layers: int) -> np.ndarray:
    """The eigen-precoder in ``Precoder.w``'s layout: [..., S, gnb_ant] for one layer, [..., S, gnb_ant,
    layers] above."""
    w = eigen_precoder(h_hat, subband_of_sc, layers)
    return w[..., 0] if layers == 1 else w


def eigen_precoder(h_hat: np.ndarray, subband_of_sc: np.ndarray, rank: int) -> np.ndarray:
    """Per-subband top-``rank`` right singular vectors of the held channel (SU eigen-precoder).

    h_hat:         [..., ue_ant, gnb_ant, sc] complex, the channel the gNB holds
    subband_of_sc: [sc] int, the subband (0..S-1) of each subcarrier; every subband non-empty
    -> w [..., S, gnb_ant, rank] complex128, orthonormal columns: the eigenvectors of the ``rank``
    largest eigenvalues of sum over the subband's subcarriers of H^H H, largest first, each with its
    first element real >= 0 (the phase convention that makes the result unique). A subband whose
    channel is all zero gets the first unit vectors.

    When the subband has fewer rows (subcarriers x UE antennas) than gNB antennas, the
    eigenproblem is solved on the smaller Gram matrix A A^H and mapped back (w ~ A^H u). The
    products are formed in the precision of h_hat (complex64 from the channel sources: no copy of
    the channel in double, whose allocation costs more than the product), the eigenproblems in double.
    """
    h_hat = np.asarray(h_hat, dtype=np.result_type(h_hat, np.complex64))
    *batch, ue_ant, gnb_ant, num_sc = h_hat.shape
    idx = _subband_index(subband_of_sc, num_sc)
    num_sb, sb_len = idx.shape
    if idx.size > num_sc:                                                   # unequal subbands: pad
        h_hat = np.concatenate([h_hat, np.zeros((*batch, ue_ant, gnb_ant, 1), h_hat.dtype)], axis=-1)
    rows = np.moveaxis(h_hat[..., idx], (-4, -3), (-2, -1))                # [..., S, L, ue, gnb]
    return eigen_precoder_of_rows(rows.reshape(*batch, num_sb, sb_len * ue_ant, gnb_ant), rank)


def eigen_precoder_of_rows(rows: np.ndarray, rank: int) -> np.ndarray:
    """``eigen_precoder`` from each subband's rows: rows [..., S, r, gnb_ant] complex whose Gram matrix
    rows^H rows is the subband's covariance (its subcarriers' channel rows, or a factor of the
    covariance such as ``FadingChannel.subband_rows``'s) -> w [..., S, gnb_ant, rank] complex128, with
    ``eigen_precoder``'s ordering, phase convention and zero-channel rule. With r < gnb_ant the
    eigenproblem is solved on the r x r matrix rows rows^H and mapped back (w ~ rows^H u)."""
    *batch, num_sb, num_rows, gnb_ant = rows.shape
    a = rows.reshape(-1, num_rows, gnb_ant)                                 # [n, r, gnb]
    a_h = a.conj().transpose(0, 2, 1)
    if num_rows < gnb_ant:
        lam, u = _top_eigenvectors(a @ a_h, rank)
        v = (a_h @ u.astype(a.dtype)).astype(np.complex128)                # [n, gnb, rank]
        v /= np.maximum(np.linalg.norm(v, axis=-2, keepdims=True), np.finfo(np.float64).tiny)
    else:
        lam, v = _top_eigenvectors(a_h @ a, rank)
    dead = lam <= 0                                                         # [n, rank]
    v[np.nonzero(dead)[0], :, np.nonzero(dead)[1]] = np.eye(gnb_ant)[np.nonzero(dead)[1]]
    first = v[:, 0, :].copy()                                               # [n, rank]
    v *= np.exp(-1j * np.angle(first))[:, None, :]
    v[:, 0, :] = np.abs(first)
    return v.reshape(*batch, num_sb, gnb_ant, rank)


def stream_sinr(h: np.ndarray, gain: np.ndarray, snr_db: float, layers: int) -> np.ndarray:
    """Per-RE SINR of a transmission, flattened over its layers: one layer, h [ue_ant, sc] with its
    gain [sc] -> ``per_re_sinr`` [sc]; two, h [ue_ant, 2, sc] -> ``layer_sinr`` [2 * sc]."""
    if layers == 1:
        return per_re_sinr(gain, snr_db)
    return layer_sinr(h, snr_db).reshape(-1)


def layer_sinr(g: np.ndarray, snr_db) -> np.ndarray:
    """Per-RE post-LMMSE SINR of each layer: g [..., ue_ant, layers, sc] (the precoded channel H W,
    unit-norm columns of W), the transmit power split equally over the layers
    -> [..., layers, sc] float64 linear: 1 / [(I + snr / L G^H G)^-1]_ll - 1. With one layer it is
    snr * ||g||^2, ``per_re_sinr`` of the stream gain."""
    num_layers = g.shape[-2]
    rho = 10.0 ** (np.asarray(snr_db, dtype=np.float64) / 10.0) / num_layers
    if num_layers == 2:            # the 2x2 inverse in closed form: a third of the cost of a batched inv
        g = g.astype(np.complex128)
        a = (g[..., 0, :].real ** 2 + g[..., 0, :].imag ** 2).sum(axis=-2)      # [..., sc] ||g_0||^2
        d = (g[..., 1, :].real ** 2 + g[..., 1, :].imag ** 2).sum(axis=-2)
        b = (g[..., 0, :].conj() * g[..., 1, :]).sum(axis=-2)                    # g_0^H g_1
        r = np.asarray(rho)[..., None]
        m11, m22 = 1.0 + r * a, 1.0 + r * d
        det = m11 * m22 - r * r * (b.real ** 2 + b.imag ** 2)
        return np.stack([det / m22 - 1.0, det / m11 - 1.0], axis=-2)
    gs = np.moveaxis(g, -1, -3).astype(np.complex128)                      # [..., sc, ue, L]
    gram = np.swapaxes(gs.conj(), -1, -2) @ gs                               # [..., sc, L, L]
    inv = np.linalg.inv(np.eye(num_layers) + np.asarray(rho)[..., None, None, None] * gram)
    d = np.real(np.diagonal(inv, axis1=-2, axis2=-1))                       # [..., sc, L]
    return np.moveaxis(1.0 / d - 1.0, -1, -2)


def precoder_of_sc(w: np.ndarray, subband_of_sc: np.ndarray) -> np.ndarray:
    """w [..., S, gnb_ant] per subband -> [..., gnb_ant, sc] per subcarrier (C-contiguous, w's dtype)."""
    return np.ascontiguousarray(np.swapaxes(w[..., np.asarray(subband_of_sc), :], -1, -2))


def precoded_gain(h: np.ndarray, w_of_sc: np.ndarray) -> np.ndarray:
    """||H w||^2 per RE: h [..., ue_ant, gnb_ant, sc], w_of_sc [..., gnb_ant, sc] -> [..., sc] float64.

    The precoded counterpart of ``Transmission.gain`` (sum over receive antennas of |h|^2).
    One batched matrix-vector product per subcarrier, no [..., ue, gnb, sc] temporary (a third faster
    than einsum at 32 antennas); a complex64 w with a complex64 h keeps it in single precision."""
    hw = np.moveaxis(h, -1, -3) @ np.moveaxis(w_of_sc, -1, -2)[..., None]  # [..., sc, ue, 1]
    return (hw.real ** 2 + hw.imag ** 2).sum(axis=(-2, -1), dtype=np.float64)


def post_precoding_sinr(h: np.ndarray, w_of_sc: np.ndarray, snr_db) -> np.ndarray:
    """Per-RE post-MRC/LMMSE SINR of one precoded stream on the true channel: snr * ||H w||^2.

    h [..., ue_ant, gnb_ant, sc] complex (unit average power per antenna pair), w_of_sc
    [..., gnb_ant, sc] with ||w|| = 1, snr_db float or [...] average per-RE SNR
    -> [..., sc] float64 linear."""
    return per_re_sinr(precoded_gain(h, w_of_sc), np.asarray(snr_db, dtype=np.float64)[..., None])


def sgcs(w_true: np.ndarray, w_hat: np.ndarray) -> np.ndarray:
    """Squared generalised cosine similarity |w_true^H w_hat|^2 / (||w_true||^2 ||w_hat||^2).

    w_true, w_hat [..., S, gnb_ant] -> [..., S] float64 in [0, 1]."""
    inner = np.sum(w_true.conj() * w_hat, axis=-1)
    return np.abs(inner) ** 2 / (np.linalg.norm(w_true, axis=-1) ** 2 * np.linalg.norm(w_hat, axis=-1) ** 2)


def nmse_db(h: np.ndarray, h_hat: np.ndarray) -> np.ndarray:
    """||h - h_hat||^2 / ||h||^2 per channel sample: [..., ue_ant, gnb_ant, sc] -> [...] dB."""
    err = np.sum(np.abs(h - h_hat) ** 2, axis=(-3, -2, -1))
    return 10.0 * np.log10(err / np.sum(np.abs(h) ** 2, axis=(-3, -2, -1)))


def eigen_gain(h: np.ndarray) -> np.ndarray:
    """The per-RE eigen-beamformer's gain lambda_max(H^H H) = max over unit w of ||H w||^2:
    h [..., ue_ant, gnb_ant, sc] -> [..., sc] float64 (the eigenvalues of the [ue_ant, ue_ant] H H^H)."""
    hs = np.moveaxis(h, -1, -3).astype(np.complex128)                       # [..., sc, ue, gnb]
    return np.linalg.eigvalsh(hs @ np.swapaxes(hs.conj(), -1, -2))[..., -1]


def precoding_loss_db(h: np.ndarray, w_of_sc: np.ndarray) -> np.ndarray:
    """Per-RE loss of w against the per-RE eigen-beamformer: 10 log10(lambda_max(H^H H) / ||H w||^2).

    h [..., ue_ant, gnb_ant, sc], w_of_sc [..., gnb_ant, sc] (||w|| = 1) -> [..., sc] dB >= 0.
    With one UE antenna (H = h^H a row) lambda_max = ||h||^2 and the linear loss is the inverse
    of the closed form |h^H w|^2 / ||h||^2."""
    return 10.0 * np.log10(eigen_gain(h) / precoded_gain(h, w_of_sc))
