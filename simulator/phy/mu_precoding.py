"""MU-MIMO precoding: regularised zero-forcing over K co-scheduled UEs per subband, and its
post-precoding SINR on the true channels.

The gNB serves K UEs on a subband with one stream each (rank 1). What it holds of UE k is the
*effective row* of the subband, h_k^H = sqrt(g_k) w_k^H [gnb_ant]: w_k the UE's held unit direction
(the report's ``Precoder.w``: the dominant right singular vector of the held channel's subband
covariance, sum over the subband's subcarriers of H_k^H H_k, or a codeword) and g_k the mean held gain
per RE of that direction on the subband, mean ||H_k w_k||^2 (``held_gain`` of the held channel; a
codeword report holds no channel, so its gain must come from elsewhere, e.g. the CQI). With one subcarrier per
subband this is u_k^H H_k, u_k and w_k the dominant left/right singular vectors of H_k (and the
channel row itself with one UE antenna); the UE combining with u_k sees h_k^H x plus unit noise.

SNR as in ``simulator.phy.precoding``: ``snr_db`` of UE k is the average per-RE SNR of the total
transmit power over its unit-average-power channel. The power is split equally over the K streams:
each column of W has ||w_j||^2 = 1/K (||W||_F = 1), so K = 1 is the SU precoder (||w|| = 1) and its
SINR snr ||H w||^2. UE k receives y_k = sqrt(snr_k) H_k W x + n, x of unit power per stream.

RZF (``rzf_precoder``): with F = diag(sqrt(snr_k)) [h_1^H; ...; h_K^H] (the rows in units of the
noise, total power 1), W ~ F^H (F F^H + alpha I)^-1, each column normalised to 1/sqrt(K). The default
alpha = K is the MMSE-like regularisation (K noise powers over the total power, Peel, Hochwald and
Swindlehurst 2005); with equal SNRs it is Sionna's ``rzf_precoding_matrix`` of the rows with
alpha = K / snr. alpha = 0 is zero-forcing (K <= gnb_ant, independent rows).

SINR (``mu_sinr``): UE k's receiver knows its precoded channels g_kj = H_k w_j of every stream
(the DMRS is precoded like the data; co-scheduled ports orthogonal) and equalises stream k by
LMMSE with the other K-1 streams as interference:
SINR_k = snr_k g_kk^H (I + snr_k sum_{j != k} g_kj g_kj^H)^-1 g_kk, for one UE antenna
snr_k |g_kk|^2 / (1 + snr_k sum_{j != k} |g_kj|^2). It equals stream k's SINR of a joint LMMSE over
all K streams (``layer_sinr`` of sqrt(K) G_k), but costs one ue_ant x ue_ant solve per RE, not K x K.

Numpy, not Sionna: W depends on the co-scheduled set, so it is rebuilt per scheduling decision, not
per report. Sionna's ``rzf_precoding_matrix`` on [13 subbands, 4 UEs, 32 antennas] costs about 1.0 ms
a call eager and 180 us in a ``tf.function`` (one thread), the same closed form in numpy 40 us
(tests/simulator/phy/test_mu_precoding.py checks the two agree). ``LMMSEPostEqualizationSINR`` needs a
ResourceGrid and StreamManagement per set and runs in TensorFlow too.

Cost (tests/benchmarks/bench_mu_precoding.py, one thread, 32 gNB antennas, 624 subcarriers, 13 subbands):
per slot ``precoded_channels`` + ``mu_sinr`` about 21 / 31 / 61 / 164 us for K = 1 / 2 / 4 / 8 one-antenna
UEs (46 / 74 / 153 / 417 us with two antennas); ``effective_rows`` + ``rzf_precoder`` 25 / 35 / 44 / 68 us
per set; ``held_gain`` about 45 us per one-antenna UE and report. The event loop's MU path
(``simulator.processes.co_scheduling``) precodes in the path domain instead of ``precoded_channels``.
"""
from __future__ import annotations

import numpy as np

from simulator.phy.precoding import precoded_gain, precoder_of_sc


def held_gain(h_hat: np.ndarray, w: np.ndarray, subband_sc: int) -> np.ndarray:
    """Mean held gain per RE of each subband's direction: mean over the subband of ||H_hat w||^2.

    h_hat [..., ue_ant, gnb_ant, sc] the channel the gNB holds, w [..., S, gnb_ant] unit norm per subband
    (subbands of ``subband_sc`` subcarriers from the first, the last shorter if the carrier ends first)
    -> [..., S] float64."""
    num_sc = h_hat.shape[-1]
    starts = np.arange(0, num_sc, subband_sc)
    gain = precoded_gain(h_hat, precoder_of_sc(w.astype(h_hat.dtype), np.arange(num_sc) // subband_sc))
    return np.add.reduceat(gain, starts, axis=-1) / np.diff(np.append(starts, num_sc))


def effective_rows(w: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """The rows the gNB precodes for: w [..., K, S, gnb_ant] unit-norm held directions and gain
    [..., K, S] their held gains -> h^H [..., S, K, gnb_ant] complex128, row k = sqrt(g_k) w_k^H."""
    rows = np.sqrt(np.asarray(gain, dtype=np.float64))[..., None] * np.conj(w).astype(np.complex128)
    return np.swapaxes(rows, -3, -2)


def rzf_precoder(rows: np.ndarray, snr_db, alpha: float | None = None,
                 num_streams: np.ndarray | None = None) -> np.ndarray:
    """Regularised zero-forcing per subband, one stream per UE, the power split equally.

    rows [..., S, K, gnb_ant] (``effective_rows``), snr_db float or [..., K] each UE's average per-RE SNR,
    alpha the regularisation in noise powers over the total power (None: the set's K, the MMSE-like
    value; 0: zero-forcing) -> W [..., S, gnb_ant, K] complex128 with ||w_j|| = 1/sqrt(K) (a zero row gets
    a zero column). With K = 1 it is w = rows^H / ||rows||, the held direction itself.

    num_streams [..., S] int (None: K everywhere) lets sets of different sizes share one call: each set's
    first num_streams rows are its UEs and the rest must be zero rows (pads). A padded set's W is that of
    its unpadded rows (its alpha and power split are its own K's), with zero columns for the pads."""
    rows = np.asarray(rows, dtype=np.complex128)
    num_ues, gnb_ant = rows.shape[-2:]
    k = np.float64(num_ues) if num_streams is None else np.asarray(num_streams, dtype=np.float64)[..., None, None]
    alpha = k if alpha is None else float(alpha)
    if np.any(alpha < 0) or (np.any(alpha == 0) and np.any(k > gnb_ant)):
        raise ValueError(f"rzf_precoder: alpha must be >= 0 (> 0 when K = {num_ues} > gnb_ant = {gnb_ant}), "
                         f"got {alpha}")
    snr = 10.0 ** (np.asarray(snr_db, dtype=np.float64) / 10.0)
    f = np.sqrt(snr)[..., None, :, None] * rows if snr.ndim else np.sqrt(snr) * rows     # [..., S, K, gnb]
    diag = alpha * np.eye(num_ues)
    if num_streams is not None:                         # a pad's diagonal is 1: its row is zero, its column too
        diag = np.where(np.arange(num_ues) >= k, 1.0, 1.0 * alpha) * np.eye(num_ues)
    f_h = np.swapaxes(f.conj(), -1, -2)                                                  # [..., S, gnb, K]
    w = f_h @ np.linalg.inv(f @ f_h + diag)          # (A^-1 F)^H = F^H A^-1, A Hermitian; a K x K inverse
    norm = np.linalg.norm(w, axis=-2, keepdims=True)
    return w / (np.sqrt(k) * np.maximum(norm, np.finfo(np.float64).tiny))


def precoded_channels(h: np.ndarray, w: np.ndarray, subband_sc: int) -> np.ndarray:
    """Every stream's precoded channel at every UE: g_kj = H_k w_j per RE.

    h [..., K, ue_ant, gnb_ant, sc] the true channels, w [..., S, gnb_ant, K] per subband (subbands of
    ``subband_sc`` subcarriers from the first, S = ceil(sc / subband_sc)) -> g [..., K, ue_ant, K, sc]
    (UE, its antenna, stream, RE), in the precision of h (w is cast: complex64 channels keep it single).
    One matrix product per subband and UE antenna on h as it lies (no transposed copy of the channel)."""
    *batch, num_ues, ue_ant, gnb_ant, num_sc = h.shape
    num_sb = -(-num_sc // subband_sc)
    if w.shape[-3:] != (num_sb, gnb_ant, num_ues):
        raise ValueError(f"precoded_channels: w must be [..., {num_sb}, {gnb_ant}, {num_ues}] for h {h.shape} "
                         f"and subband_sc {subband_sc}, got {w.shape}")
    dtype = np.result_type(h.dtype, np.complex64)
    pad = num_sb * subband_sc - num_sc                                          # the last subband's missing REs
    if pad:
        h = np.concatenate([h, np.zeros((*batch, num_ues, ue_ant, gnb_ant, pad), h.dtype)], axis=-1)
    rows = num_ues * ue_ant
    h_sb = np.moveaxis(h.reshape(*batch, rows, gnb_ant, num_sb, subband_sc), -2, -4)     # [..., S, rows, gnb, L]
    g = np.empty((*batch, rows, num_ues, num_sb, subband_sc), dtype)
    np.matmul(np.swapaxes(w, -1, -2).astype(dtype)[..., None, :, :], h_sb, out=np.moveaxis(g, -2, -4))
    return g.reshape(*batch, num_ues, ue_ant, num_ues, num_sb * subband_sc)[..., :num_sc]


def mu_sinr(g: np.ndarray, snr_db) -> np.ndarray:
    """Per-RE post-LMMSE SINR of each UE's own stream with the co-scheduled streams as interference.

    g [..., K, ue_ant, K, sc] (``precoded_channels``: ||w_j||^2 = 1/K), snr_db float or [..., K]
    -> [..., K, sc] float64 linear: snr_k g_kk^H (I + snr_k sum_{j != k} g_kj g_kj^H)^-1 g_kk."""
    num_ues, ue_ant = g.shape[-4], g.shape[-3]
    snr = 10.0 ** (np.asarray(snr_db, dtype=np.float64) / 10.0)
    rho = snr[..., None] if snr.ndim else snr                                   # [..., K, 1]
    others = 1.0 - np.eye(num_ues)                                              # [k, j]: j != k
    if ue_ant == 1:
        x = g[..., 0, :, :]                                                     # [..., K, K, sc]
        p = (x.real ** 2 + x.imag ** 2).astype(np.float64)
        return rho * _own(p) / (1.0 + rho * _sum_over_others(p, others))
    if ue_ant == 2:                # the 2x2 inverse in closed form, R = [[a, b], [b*, c]]: a fifth of the cost
        g0, g1 = g[..., 0, :, :].astype(np.complex128), g[..., 1, :, :].astype(np.complex128)
        a = 1.0 + rho * _sum_over_others(g0.real ** 2 + g0.imag ** 2, others)
        c = 1.0 + rho * _sum_over_others(g1.real ** 2 + g1.imag ** 2, others)
        b = rho * _sum_over_others(g0 * g1.conj(), others)
        o0, o1 = _own(g0), _own(g1)
        quad = (c * (o0.real ** 2 + o0.imag ** 2) + a * (o1.real ** 2 + o1.imag ** 2)
                - 2.0 * (b * o0.conj() * o1).real) / (a * c - (b.real ** 2 + b.imag ** 2))
        return rho * quad
    g = g.astype(np.complex128)
    outer = g[..., :, None, :, :] * g[..., None, :, :, :].conj()               # [..., K, ue, ue, K, sc]
    q = (outer * others[:, None, None, :, None]).sum(axis=-2)                   # [..., K, ue, ue, sc]
    r = np.eye(ue_ant) + rho[..., None, None] * np.moveaxis(q, -1, -3)          # [..., K, sc, ue, ue]
    own = np.moveaxis(np.einsum("...kuks->...kus", g), -2, -1)   # [..., K, sc, ue]
    return rho * np.real(np.sum(own.conj() * np.linalg.solve(r, own[..., None])[..., 0], axis=-1))


def _own(x: np.ndarray) -> np.ndarray:
    """x [..., K(UE k), K(stream j), sc] -> [..., K, sc] the UE's own stream j = k (a view)."""
    return np.einsum("...kks->...ks", x)


def _sum_over_others(x: np.ndarray, others: np.ndarray) -> np.ndarray:
    """x [..., K(UE k), K(stream j), sc] -> [..., K, sc] the sum over the other streams j != k: one
    matrix product per UE with its row of ``others`` (numpy's sum over a short axis costs several times more)."""
    return (others[:, None, :] @ x)[..., 0, :]
