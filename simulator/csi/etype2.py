"""38.214 Rel-16 enhanced Type II codebook (``typeII-r16``, 5.2.2.2.5), ranks 1 and 2: the UE's PMI
search, the gNB's precoder from the PMI, and the report's 38.212 bits.

Ports, DFT beams and oversampling are Type I's (``simulator.csi.type1``: N1 x N2 ports per
polarisation, q = n1 N2 + n2, O1 = O2 = 4, O = 1 along a dimension of 1; 38.214 Table 5.2.2.2.3-1
lists the same (N1, N2) as Type I).

Codebook. Per layer l and PMI subband t = 0..N3-1 (N3 = the report's subbands: one PMI subband per
CQI subband, R = 1):
    w_l(t) ~ sum_{i < L} b_i^(pol) sum_{f < M} p1_{l,pol(i)} p2_{l,i,f} phi_{l,i,f} exp(j 2 pi t n3_{l,f} / N3),
with
- b_i: L orthogonal DFT beams v_{O1 n1 + q1, O2 n2 + q2} of one rotation (q1, q2) (i1,1), chosen
  among the group's N1 N2 (i1,2), on both polarisations (2L coefficients a layer);
- n3_{l,f}: M DFT bases of the N3 subbands per layer (i1,6,l; n3 = 0 always among them, the
  strongest coefficient's basis remapped to 0), M = ceil(p_v N3 / R) (Table 5.2.2.2.5-1's p_v);
- at most K0 = ceil(beta 2 L M) non-zero coefficients per layer (bitmap i1,7,l), the strongest
  (i1,8,l) with amplitude 1 and phase 0;
- amplitudes: a reference p1 for the polarisation without the strongest coefficient (4 bits,
  i2,3,l: p1 = 2^(-(15 - k)/4), k = 1..15) and a differential p2 per coefficient (3 bits, i2,4,l:
  p2 = 2^(-(7 - k)/2), k = 0..7); phases 16-PSK (4 bits, i2,5,l).
Each layer's column is normalised to unit norm per subband (38.214's 1 / sqrt(N1 N2 gamma_t)); two
layers share the beams and split the power (the caller's snr / rank), as Type I's columns.

paramCombination-r16 (Table 5.2.2.2.5-1): (L, p_v for ranks 1-2, beta) = 1: (2, 1/4, 1/4),
2: (2, 1/4, 1/2), 3: (4, 1/4, 1/4), 4: (4, 1/4, 1/2), 5: (4, 1/4, 3/4), 6: (4, 1/2, 1/2),
7: (6, 1/4, 1/2), 8: (6, 1/4, 3/4); L = 6 needs 32 ports, L <= N1 N2.

The UE's search (38.214 leaves it to the UE; this one is the usual projection): the subband
covariances' top eigenvectors v_t (``eigen_precoder_of_rows``), the rotation and L beams that
capture the most wideband power over both polarisations, the coefficients B^H v_t per subband with
each subband's phase set by the wideband-strongest beam, their DFT over the subbands, the strongest
coefficient, the M - 1 strongest other bases, the K0 largest coefficients, then quantisation
relative to the strongest (nearest amplitude in dB, nearest phase).

Single-polarised arrays (not in 38.214, as for Type I): L beams and L M coefficients a layer, no
reference amplitude (i2,3 is not sent), K0 = ceil(beta L M), i1,8 of ceil(log2 L) bits for rank 2.

Bits (38.212 6.3.2.1.2, Rel-16 enhanced Type II): Part 1 RI (Type I's rule), wideband CQI (4) and the
number of non-zero coefficients (ceil log2 K0 for rank 1, ceil log2 2 K0 for rank 2); Part 2 i1,1
ceil(log2 O1 O2), i1,2 ceil(log2 C(N1 N2, L)), per layer i1,6 ceil(log2 C(N3 - 1, M - 1)), i1,7 2 L M,
i1,8 (rank 1 ceil(log2 K_NZ), rank 2 ceil(log2 2L)), i2,3 4, i2,4 3 (K_NZ,l - 1), i2,5 4 (K_NZ,l - 1).
Simplified: Part 2 is always sent whole (no UCI omission: the report is assumed to fit its
PUCCH/PUSCH allocation, so no priority-ordered dropping of coefficients), no subband CQI, R = 1,
N3 <= 19 (38.214's at most 19 CSI subbands, so no i1,5 window), no codebook subset or RI restriction
beyond the maximum rank, no UCI CRC.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.csi.type1 import CodebookConfig, dft_beams, ri_bits, WIDEBAND_CQI_BITS
from simulator.phy.precoding import eigen_precoder_of_rows

# Table 5.2.2.2.5-1: paramCombination-r16 -> (L, p_v for ranks 1 and 2, beta)
PARAM_COMBINATIONS: dict[int, tuple[int, float, float]] = {
    1: (2, 0.25, 0.25), 2: (2, 0.25, 0.5), 3: (4, 0.25, 0.25), 4: (4, 0.25, 0.5),
    5: (4, 0.25, 0.75), 6: (4, 0.5, 0.5), 7: (6, 0.25, 0.5), 8: (6, 0.25, 0.75),
}
MAX_SUBBANDS = 19                                     # 38.214: at most 19 CSI subbands (N3 with R = 1)
P1 = np.concatenate([[0.0], 2.0 ** (-(15 - np.arange(1, 16)) / 4)])   # i2,3: k = 0 reserved
P2 = 2.0 ** (-(7 - np.arange(8)) / 2)                                  # i2,4
NUM_PHASES = 16                                                        # i2,5: 16-PSK


@dataclass(frozen=True)
class EType2Config:
    """One eType II codebook: the array's Type I geometry, paramCombination and N3 subbands."""
    codebook: CodebookConfig
    param_combination: int
    num_subbands: int

    @property
    def num_beams(self) -> int:
        return PARAM_COMBINATIONS[self.param_combination][0]

    @property
    def num_pols(self) -> int:
        return 2 if self.codebook.dual_polarised else 1

    @property
    def num_coefficients(self) -> int:
        """Spatial coefficients a layer: 2L (L single-polarised)."""
        return self.num_pols * self.num_beams

    @property
    def num_bases(self) -> int:
        """M = ceil(p_v N3 / R), R = 1."""
        return math.ceil(PARAM_COMBINATIONS[self.param_combination][1] * self.num_subbands)

    @property
    def k0(self) -> int:
        """Most non-zero coefficients a layer: ceil(beta 2 L M)."""
        return math.ceil(PARAM_COMBINATIONS[self.param_combination][2] * self.num_coefficients * self.num_bases)


def etype2_config(codebook: CodebookConfig, param_combination: int, num_subbands: int,
                  field: str = "csi_rs.report") -> EType2Config:
    """The eType II codebook, or a ValueError naming ``field``'s sub-field when 38.214 has none."""
    if param_combination not in PARAM_COMBINATIONS:
        raise ValueError(f"{field}.param_combination: must be 1-8 (38.214 Table 5.2.2.2.5-1), got {param_combination}")
    num_beams = PARAM_COMBINATIONS[param_combination][0]
    if num_beams > codebook.n1 * codebook.n2:
        raise ValueError(f"{field}.param_combination: {param_combination} has L = {num_beams} beams, more than the "
                         f"{codebook.n1 * codebook.n2} orthogonal beams of an N1 x N2 = {codebook.n1} x {codebook.n2} array")
    if num_beams == 6 and codebook.num_ports != 32:
        raise ValueError(f"{field}.param_combination: {param_combination} (L = 6) needs 32 ports (38.214), the array "
                         f"has {codebook.num_ports}")
    if not 1 <= num_subbands <= MAX_SUBBANDS:
        raise ValueError(f"{field}.subband_prbs: eType II reports at most {MAX_SUBBANDS} subbands (38.214), the "
                         f"carrier has {num_subbands}; use larger subbands")
    return EType2Config(codebook, param_combination, num_subbands)


@dataclass(frozen=True)
class EType2Pmi:
    """An eType II PMI. q: the rotation (q1, q2) (i1,1); beams [L] the group's beams n1 N2 + n2 (i1,2,
    ascending); per layer (lists of ``rank``): bases [M] n3 (0 first, i1,6), bitmap [2L, M] bool (i1,7),
    strongest (i, f) (i1,8), p1 [pols] the reference amplitude index of each polarisation (15 for the
    strongest's: amplitude 1, not sent), p2 [2L, M] and phase [2L, M] indices (i2,4, i2,5; zero off the
    bitmap)."""
    rank: int
    q: tuple[int, int]
    beams: tuple[int, ...]
    bases: list
    bitmap: list
    strongest: list
    p1: list
    p2: list
    phase: list

    @property
    def k_nz(self) -> list[int]:
        return [int(b.sum()) for b in self.bitmap]


def _beam_matrix(cfg: EType2Config, q: tuple[int, int], beams) -> np.ndarray:
    """[P, 2L] the selected beams on each polarisation (block diagonal; [P, L] single-polarised)."""
    cb = cfg.codebook
    v = dft_beams(cb)                                                       # [N1 O1, N2 O2, N1 N2]
    n1, n2 = np.divmod(np.asarray(beams), cb.n2)
    b = v[cb.o1 * n1 + q[0], cb.o2 * n2 + q[1]].T                           # [N1 N2, L]
    if cfg.num_pols == 1:
        return b
    z = np.zeros_like(b)
    return np.block([[b, z], [z, b]])


def _dft(num_subbands: int) -> np.ndarray:
    """[N3, N3] y[t, n3] = exp(j 2 pi t n3 / N3)."""
    t = np.arange(num_subbands)
    return np.exp(2j * np.pi * np.outer(t, t) / num_subbands)


def precoder(cfg: EType2Config, pmi: EType2Pmi) -> np.ndarray:
    """The gNB's precoder of a PMI: [N3, P, rank] complex128, unit-norm columns per subband."""
    b = _beam_matrix(cfg, pmi.q, pmi.beams)                                 # [P, 2L]
    y = _dft(cfg.num_subbands)
    pol_of = np.repeat(np.arange(cfg.num_pols), cfg.num_beams)             # [2L]
    cols = []
    for layer in range(pmi.rank):
        amp = P1[np.asarray(pmi.p1[layer])][pol_of][:, None] * P2[pmi.p2[layer]]
        coef = np.where(pmi.bitmap[layer], amp * np.exp(2j * np.pi * pmi.phase[layer] / NUM_PHASES), 0.0)   # [2L, M]
        w = b @ coef @ y[:, pmi.bases[layer]].T                             # [P, N3]
        w /= np.maximum(np.linalg.norm(w, axis=0, keepdims=True), np.finfo(np.float64).tiny)
        cols.append(w.T)
    return np.stack(cols, axis=-1)


def _select_beams(cfg: EType2Config, cov: np.ndarray) -> tuple[tuple[int, int], tuple[int, ...]]:
    """The rotation and the L beams of most wideband power: cov [P, P] the wideband covariance."""
    cb = cfg.codebook
    v = dft_beams(cb)                                                       # [N1 O1, N2 O2, Q]
    q_ports = cb.n1 * cb.n2
    flat = v.reshape(-1, q_ports)                                           # [N1 O1 N2 O2, Q]
    power = sum(np.sum((flat.conj() @ cov[p * q_ports:(p + 1) * q_ports, p * q_ports:(p + 1) * q_ports]) * flat,
                       axis=-1).real for p in range(cfg.num_pols)).reshape(v.shape[:2])     # b^H C_pol b
    n1, n2 = np.divmod(np.arange(q_ports), cb.n2)
    q1, q2 = np.meshgrid(np.arange(cb.o1), np.arange(cb.o2), indexing="ij")
    groups = power[cb.o1 * n1 + q1.reshape(-1, 1), cb.o2 * n2 + q2.reshape(-1, 1)]         # [O1 O2, N1 N2]
    top = np.sort(np.argsort(-groups, axis=1, kind="stable")[:, :cfg.num_beams], axis=1)    # [O1 O2, L]
    captured = np.take_along_axis(groups, top, axis=1)
    # the most power captured; among rotations that capture the same (L beams can span a whole dimension
    # of the array), the one with the strongest beam: fewer, larger coefficients to quantise
    scale = max(float(power.max()), np.finfo(np.float64).tiny)
    order = np.lexsort((-captured.max(axis=1), -np.round(captured.sum(axis=1) / scale, 9)))
    g = int(order[0])
    return (int(q1.flat[g]), int(q2.flat[g])), tuple(int(x) for x in top[g])


def _quantise_layer(cfg: EType2Config, coef: np.ndarray) -> tuple:
    """One layer's coefficients over the subbands coef [2L, N3] -> (bases [M], bitmap, strongest, p1, p2, phase)."""
    d = coef @ np.conj(_dft(cfg.num_subbands)) / cfg.num_subbands            # [2L, N3]: c(t) = sum d y(t)
    i_s, f_s = np.unravel_index(int(np.argmax(np.abs(d))), d.shape)
    d = np.roll(d, -f_s, axis=1)                                             # the strongest's basis -> 0
    energy = (np.abs(d) ** 2).sum(axis=0)
    others = 1 + np.argsort(-energy[1:], kind="stable")[:cfg.num_bases - 1]
    bases = np.concatenate([[0], np.sort(others)]).astype(np.int64)
    x = d[:, bases] / d[i_s, 0]                                              # strongest: 1 at (i_s, 0)
    keep = np.zeros(x.shape, bool)
    keep.flat[np.argsort(-np.abs(x).ravel(), kind="stable")[:min(cfg.k0, x.size)]] = True
    keep[i_s, 0] = True
    pol_of = np.repeat(np.arange(cfg.num_pols), cfg.num_beams)
    strong_pol = pol_of[i_s]
    p1 = []
    for pol in range(cfg.num_pols):
        if pol == strong_pol:
            p1.append(15)
            continue
        mags = np.abs(x[pol_of == pol])[keep[pol_of == pol]]
        ref = mags.max() if mags.size else 0.0
        p1.append(int(_nearest_db(P1[1:], np.array(ref))) + 1)
    ref_amp = P1[np.asarray(p1)][pol_of][:, None]                            # [2L, 1]
    rel = np.abs(x) / ref_amp
    # a coefficient below half a step (in dB) under the smallest level is not reported: it is zero, and
    # sending it at the smallest amplitude would add a beam the channel does not have
    keep &= rel >= P2[0] * 2.0 ** -0.25
    keep &= (np.abs(x) >= P1[1] * P2[0] * 2.0 ** -0.375)
    keep[i_s, 0] = True
    p2 = np.where(keep, _nearest_db(P2, rel), 0)
    phase = np.where(keep, np.rint(np.angle(x) / (2 * np.pi / NUM_PHASES)).astype(np.int64) % NUM_PHASES, 0)
    p2[i_s, 0], phase[i_s, 0] = 7, 0
    return bases, keep, (int(i_s), 0), p1, p2.astype(np.int64), phase.astype(np.int64)


def _nearest_db(levels: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Index of the level nearest to each a in dB (a <= 0: the smallest level)."""
    a = np.asarray(a, dtype=np.float64)
    log_a = np.log(np.maximum(a, np.finfo(np.float64).tiny))
    return np.argmin(np.abs(np.log(levels) - log_a[..., None]), axis=-1)


def select_pmi(cfg: EType2Config, rows: np.ndarray, rank: int) -> EType2Pmi:
    """The UE's eType II PMI of rank 1 or 2 from each subband's covariance rows [N3, r, P] (rows^H rows =
    sum over the subband of H^H H: ``FadingChannel.subband_rows`` or the subband's channel rows)."""
    if rank not in (1, 2):
        raise ValueError(f"eType II rank must be 1 or 2 here, got {rank}")
    if rows.shape[0] != cfg.num_subbands or rows.shape[-1] != cfg.codebook.num_ports:
        raise ValueError(f"rows must be [{cfg.num_subbands}, r, {cfg.codebook.num_ports}], got {list(rows.shape)}")
    flat = rows.reshape(-1, rows.shape[-1])
    cov = flat.conj().T @ flat                                               # wideband covariance [P, P]
    q, beams = _select_beams(cfg, cov)
    b = _beam_matrix(cfg, q, beams)                                          # [P, 2L]
    v = eigen_precoder_of_rows(rows, rank)                                   # [N3, P, rank]
    ref = int(np.argmax(np.sum(b.conj() * (cov @ b), axis=0).real))        # the wideband-strongest beam
    out = {k: [] for k in ("bases", "bitmap", "strongest", "p1", "p2", "phase")}
    for layer in range(rank):
        c = b.conj().T @ v[:, :, layer].T                                    # [2L, N3]
        c *= np.exp(-1j * np.angle(c[ref]))[None, :]                          # each subband's phase
        for key, value in zip(out, _quantise_layer(cfg, c)):
            out[key].append(value)
    return EType2Pmi(rank=rank, q=q, beams=beams, **out)


@dataclass(frozen=True)
class EType2Bits:
    """Bits of one eType II report (module docstring): Part 1 and Part 2."""
    part1: int
    part2: int

    @property
    def total(self) -> int:
        return self.part1 + self.part2


def _bits(num_values: int) -> int:
    return math.ceil(math.log2(num_values)) if num_values > 1 else 0


def report_bits(cfg: EType2Config, pmi: EType2Pmi, max_rank: int) -> EType2Bits:
    """The report's 38.212 bit count (module docstring), from the PMI's rank and non-zero coefficients."""
    cb, rank = cfg.codebook, pmi.rank
    part1 = ri_bits(cb, max_rank) + WIDEBAND_CQI_BITS + _bits(cfg.k0 if rank == 1 else 2 * cfg.k0)
    part2 = _bits(cb.o1 * cb.o2) + _bits(math.comb(cb.n1 * cb.n2, cfg.num_beams))
    for k_nz in pmi.k_nz:
        part2 += _bits(math.comb(cfg.num_subbands - 1, cfg.num_bases - 1))          # i1,6
        part2 += cfg.num_coefficients * cfg.num_bases                               # i1,7 bitmap
        part2 += _bits(k_nz) if rank == 1 else _bits(cfg.num_coefficients)          # i1,8
        part2 += 4 * (cfg.num_pols - 1)                                             # i2,3
        part2 += (3 + 4) * (k_nz - 1)                                               # i2,4, i2,5
    return EType2Bits(part1, part2)

