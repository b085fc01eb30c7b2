"""38.214 Type I single-panel codebook (codebookMode 1, ranks 1 and 2): codewords, PMI/RI search, 38.212 bits.

Ports. The array has N1 x N2 ports per polarisation (38.214 5.2.2.2.1; N1 >= N2). Within one
polarisation the port of element (n1, n2) is ``q = n1 * N2 + n2`` (n2 fastest), n1 = 0..N1-1,
n2 = 0..N2-1, which is the order of 38.214's v_{l,m} = a_l (x) u_m. A dual-polarised array has
P = 2 N1 N2 ports: ports 0..N1N2-1 are the first polarisation, N1N2..2N1N2-1 the second in the
same (n1, n2) order (38.214's W = [v; phi v]). A single-polarised array has P = N1 N2 ports in that
order. The caller maps its antenna index onto this order (for a UPA of rows x columns, with the
horizontal dimension first as in NR: n1 = column, n2 = row).

Codewords. v_{l,m} is the oversampled 2-D DFT beam, unit norm here,
v_{l,m}[n1 N2 + n2] = exp(j2pi (l n1 / (O1 N1) + m n2 / (O2 N2))) / sqrt(N1 N2),
l = i1,1 in 0..N1O1-1, m = i1,2 in 0..N2O2-1, phi_n = exp(j pi n / 2).
- rank 1 (Table 5.2.2.2.1-5): w = [v_{l,m}; phi_n v_{l,m}] / sqrt(2), n = i2 in 0..3;
- rank 2 (Table 5.2.2.2.1-6): W = [[v_{l,m}, v_{l',m'}], [phi_n v_{l,m}, -phi_n v_{l',m'}]] / sqrt(2),
  l' = l + k1, m' = m + k2 with (k1, k2) = the i1,3 offset of Table 5.2.2.2.1-3, n = i2 in 0..1.
Every column has unit norm (W^H W = I): 38.214's matrix, normalised to unit total power, is
W / sqrt(rank); the power split between layers is the caller's (the search below uses snr / rank).

Single-polarised array (not in 38.214, which always co-phases two polarisations): rank 1 is
w = v_{l,m} (no i2); rank 2 is W = [v_{l,m}, v_{l+k1,m+k2}], the two orthogonal DFT beams of
Table 5.2.2.2.1-3's non-zero offsets (i1,3 indexes those; no i2). It is defined for N1 >= N2 and
N1 N2 one of the port counts of Table 5.2.2.2.1-2, with 38.214's rule O = 4 along a dimension
longer than 1 and O = 1 along a dimension of 1.

Search. The metric of a codeword on one row of the channel (one subcarrier or one subband) is the
mutual information log2 det(I + snr / rank * W^H H^H H W) with equal power per layer; for rank 1
that is log2(1 + snr ||H w||^2), an increasing function of ||H w||^2, so the per-subband i2 is the
||H w||^2 maximiser. Rows are summed into subbands; the wideband i1 = (i1,1, i1,2, i1,3) maximises
the sum over subbands of the best i2's metric, and i2 is then chosen per subband. All candidates
are evaluated at once from the beam projections of each polarisation (no loop over codewords).

The DFT beams are written in numpy here (float64, no TensorFlow import on this path); the test
checks them against Sionna 1.2.2's ``sionna.phy.mimo.grid_of_beams_dft(N2, N1, O2, O1)``, whose
[m, l] entry is v_{l,m} in this port order (its flattening puts the first argument fastest,
whatever its docstring's Kronecker order says).

Simplifications: codebookMode 1 only; ranks 1 and 2 only (no P = 2 codebook, Table 5.2.2.2.1-1);
no codebook subset or RI restriction beyond a maximum rank; one CSI-RS resource (no CRI), no LI;
wideband CQI only (no differential subband CQI); the report size is RI + CQI + PMI without the
UCI CRC and without 38.212's Part 1 / Part 2 split or padding.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

# 38.214 Table 5.2.2.2.1-2: supported (N1, N2) -> (O1, O2) of the Type I single-panel codebook
# (dual-polarised; P_CSI-RS = 2 N1 N2 ports).
SUPPORTED_N1_N2_O1_O2: dict[tuple[int, int], tuple[int, int]] = {
    (2, 1): (4, 1),
    (2, 2): (4, 4), (4, 1): (4, 1),
    (3, 2): (4, 4), (6, 1): (4, 1),
    (4, 2): (4, 4), (8, 1): (4, 1),
    (4, 3): (4, 4), (6, 2): (4, 4), (12, 1): (4, 1),
    (4, 4): (4, 4), (8, 2): (4, 4), (16, 1): (4, 1),
}
PORT_COUNTS = sorted({2 * n1 * n2 for n1, n2 in SUPPORTED_N1_N2_O1_O2})   # 4, 8, 12, 16, 24, 32
# The single-polarised extension (module docstring): N1 >= N2 with N1 N2 one of those port counts.
SINGLE_POLARISED_N1_N2 = [(n1, p // n1) for p in PORT_COUNTS for n1 in range(1, p + 1)
                          if p % n1 == 0 and n1 >= p // n1]
WIDEBAND_CQI_BITS = 4        # 38.212 Table 6.3.1.1.2-3: wideband CQI of the first transport block


def _oversampling(n: int) -> int:
    """38.214's oversampling along one dimension (Table 5.2.2.2.1-2): 4, or 1 for a dimension of 1."""
    return 4 if n > 1 else 1


@dataclass(frozen=True)
class CodebookConfig:
    """One Type I single-panel codebook: N1 x N2 ports per polarisation, oversampling O1, O2."""
    n1: int
    n2: int
    o1: int
    o2: int
    dual_polarised: bool

    @property
    def num_ports(self) -> int:
        return (2 if self.dual_polarised else 1) * self.n1 * self.n2

    def i13_offsets(self, rank: int) -> list[tuple[int, int]]:
        """(k1, k2) per i1,3 (38.214 Table 5.2.2.2.1-3); [(0, 0)] for rank 1 (no i1,3)."""
        if rank == 1:
            return [(0, 0)]
        n1, n2, o1, o2 = self.n1, self.n2, self.o1, self.o2
        if n1 == 2 and n2 == 1:
            table = [(0, 0), (o1, 0)]
        elif n2 == 1:
            table = [(0, 0), (o1, 0), (2 * o1, 0), (3 * o1, 0)]
        elif n1 == n2:
            table = [(0, 0), (o1, 0), (0, o2), (o1, o2)]
        else:
            table = [(0, 0), (o1, 0), (0, o2), (2 * o1, 0)]
        return table if self.dual_polarised else table[1:]

    def num_i2(self, rank: int) -> int:
        """Co-phasing values phi_n per subband: 4 (rank 1), 2 (rank 2); 1 (nothing sent) single-polarised."""
        if not self.dual_polarised:
            return 1
        return 4 if rank == 1 else 2


def codebook_config(n1: int, n2: int, dual_polarised: bool = True, field: str = "gnb") -> CodebookConfig:
    """The codebook of an N1 x N2 (per polarisation) array; ValueError naming ``field`` if Type I has none."""
    if dual_polarised:
        valid = SUPPORTED_N1_N2_O1_O2
        if (n1, n2) not in valid:
            listing = ", ".join(f"({a},{b})->(O1,O2)=({o1},{o2})" for (a, b), (o1, o2) in valid.items())
            raise ValueError(f"{field}: (N1, N2) = ({n1}, {n2}) per polarisation is not a 38.214 Type I "
                             f"single-panel array (Table 5.2.2.2.1-2); valid (N1, N2): {listing}")
        o1, o2 = valid[(n1, n2)]
    else:
        if (n1, n2) not in SINGLE_POLARISED_N1_N2:
            listing = ", ".join(f"({a},{b})" for a, b in SINGLE_POLARISED_N1_N2)
            raise ValueError(f"{field}: (N1, N2) = ({n1}, {n2}) single-polarised has no Type I DFT codebook "
                             f"(N1 >= N2 and N1*N2 in {PORT_COUNTS}); valid (N1, N2): {listing}")
        o1, o2 = _oversampling(n1), _oversampling(n2)
    return CodebookConfig(n1=n1, n2=n2, o1=o1, o2=o2, dual_polarised=dual_polarised)


@functools.lru_cache(maxsize=32)
def dft_beams(cfg: CodebookConfig) -> np.ndarray:
    """Unit-norm v_{l,m}: [N1 O1, N2 O2, N1 N2] complex128, entry [l, m, n1 * N2 + n2]. Cached per
    codebook (a CSI report searches them every occasion); read-only."""
    l = np.arange(cfg.n1 * cfg.o1)[:, None] * np.arange(cfg.n1)[None, :] / (cfg.n1 * cfg.o1)
    m = np.arange(cfg.n2 * cfg.o2)[:, None] * np.arange(cfg.n2)[None, :] / (cfg.n2 * cfg.o2)
    a, u = np.exp(2j * np.pi * l), np.exp(2j * np.pi * m)          # [N1O1, N1], [N2O2, N2]
    v = a[:, None, :, None] * u[None, :, None, :]                  # [N1O1, N2O2, N1, N2]
    v = v.reshape(cfg.n1 * cfg.o1, cfg.n2 * cfg.o2, cfg.n1 * cfg.n2) / math.sqrt(cfg.n1 * cfg.n2)
    v.flags.writeable = False
    return v


def _cophase(cfg: CodebookConfig, rank: int) -> np.ndarray:
    """phi_n = exp(j pi n / 2), n = 0..num_i2-1: [num_i2] complex128."""
    return np.exp(0.5j * np.pi * np.arange(cfg.num_i2(rank)))


def _second_beam(cfg: CodebookConfig, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """(l', m') = (l + k1 mod N1O1, m + k2 mod N2O2): two [N1O1, N2O2, num_i13] int arrays."""
    k = np.array(cfg.i13_offsets(rank))
    l2 = (np.arange(cfg.n1 * cfg.o1)[:, None, None] + k[None, None, :, 0]) % (cfg.n1 * cfg.o1)
    m2 = (np.arange(cfg.n2 * cfg.o2)[None, :, None] + k[None, None, :, 1]) % (cfg.n2 * cfg.o2)
    return np.broadcast_arrays(l2, m2)


def codewords(cfg: CodebookConfig, rank: int) -> np.ndarray:
    """Every codeword: [N1O1, N2O2, num_i13, num_i2, P, rank] complex128, unit-norm columns.

    Indexed [i1,1, i1,2, i1,3, i2]; rank 1 has num_i13 = 1, single-polarised num_i2 = 1.
    """
    _check_rank(rank)
    v = dft_beams(cfg)
    l2, m2 = _second_beam(cfg, rank)
    first = np.broadcast_to(v[:, :, None, None, :], l2.shape + (1, v.shape[-1]))
    layers = [first] if rank == 1 else [first, v[l2, m2][:, :, :, None, :]]
    if cfg.dual_polarised:
        phi = _cophase(cfg, rank)[None, None, None, :, None]
        signs = [1.0, -1.0]
        layers = [np.concatenate(np.broadcast_arrays(x, signs[i] * phi * x), axis=-1) / math.sqrt(2)
                  for i, x in enumerate(layers)]
    layers = [np.broadcast_to(x, l2.shape + (cfg.num_i2(rank), cfg.num_ports)) for x in layers]
    return np.stack(layers, axis=-1)


@dataclass(frozen=True)
class Pmi:
    """A Type I PMI: wideband i1 = (i1,1, i1,2, i1,3) and i2 [num_subbands] int (all 0 when not sent)."""
    rank: int
    i11: int
    i12: int
    i13: int
    i2: np.ndarray


def _check_rank(rank: int) -> None:
    if rank not in (1, 2):
        raise ValueError(f"Type I rank must be 1 or 2 here, got {rank}")


def _subband_sum(metric_rows: np.ndarray, subband_of_row: np.ndarray | None) -> np.ndarray:
    """[R, ...] -> [S, ...]: rows summed into their subbands (each row its own subband when None)."""
    if subband_of_row is None:
        return metric_rows
    subband_of_row = np.asarray(subband_of_row)
    onehot = np.arange(subband_of_row.max() + 1)[:, None] == subband_of_row[None, :]   # [S, R]
    return (onehot.astype(np.float64) @ metric_rows.reshape(len(subband_of_row), -1)).reshape(
        (onehot.shape[0],) + metric_rows.shape[1:])


def candidate_metrics(cfg: CodebookConfig, h: np.ndarray, snr_db: float, rank: int) -> np.ndarray:
    """log2 det(I + snr/rank W^H H^H H W) of every codeword on every row.

    h: [R, num_ue_ant, P] complex (R rows: subcarriers or subbands) -> [R, N1O1, N2O2, num_i13, num_i2] float64.
    """
    _check_rank(rank)
    h = np.asarray(h, dtype=np.complex128)
    if h.shape[-1] != cfg.num_ports:
        raise ValueError(f"channel has {h.shape[-1]} gNB antennas, the codebook {cfg.num_ports} ports")
    q = cfg.n1 * cfg.n2
    v = dft_beams(cfg)                                           # [L, M, Q]
    proj = [np.einsum("rup,lmp->rulm", h[..., i * q:(i + 1) * q], v)
            for i in range(2 if cfg.dual_polarised else 1)]      # H_pol v_{l,m}: [R, U, L, M]
    l2, m2 = _second_beam(cfg, rank)
    snr = 10.0 ** (snr_db / 10.0) / rank

    def layer(l_idx, m_idx, sign):                               # H w of one layer: [R, U, L, M, i13, i2]
        z = [p[:, :, l_idx, m_idx][..., None] for p in proj]
        if not cfg.dual_polarised:
            return z[0]
        return (z[0] + sign * _cophase(cfg, rank) * z[1]) / math.sqrt(2)

    l1, m1 = np.broadcast_arrays(np.arange(v.shape[0])[:, None, None], np.arange(v.shape[1])[None, :, None])
    z1 = layer(l1, m1, 1.0)
    g11 = np.sum(np.abs(z1) ** 2, axis=1)
    if rank == 1:
        return np.log2(1.0 + snr * g11) * np.ones(l2.shape + (cfg.num_i2(rank),))
    z2 = layer(l2, m2, -1.0)
    g22 = np.sum(np.abs(z2) ** 2, axis=1)
    g12 = np.sum(np.conj(z1) * z2, axis=1)
    return np.log2((1.0 + snr * g11) * (1.0 + snr * g22) - snr ** 2 * np.abs(g12) ** 2)


def select_pmi(cfg: CodebookConfig, h: np.ndarray, snr_db: float, rank: int,
               subband_of_row: np.ndarray | None = None) -> tuple[Pmi, np.ndarray]:
    """The PMI maximising the summed mutual information, and that information per subband.

    h: [R, num_ue_ant, P] complex, one row per subband, or per subcarrier with ``subband_of_row``
    [R] int (the subband 0..S-1 of each row). Returns the Pmi and [S] float64 bits/s/Hz (summed over
    the subband's rows) at the chosen codeword. Ties go to the lowest flat index (i2 fastest).
    """
    per_sb = _subband_sum(candidate_metrics(cfg, h, snr_db, rank), subband_of_row)   # [S, L, M, i13, i2]
    wideband = per_sb.max(axis=-1).sum(axis=0)                                        # [L, M, i13]
    i11, i12, i13 = np.unravel_index(int(np.argmax(wideband)), wideband.shape)
    best = per_sb[:, i11, i12, i13, :]                                                # [S, i2]
    i2 = np.argmax(best, axis=-1)
    pmi = Pmi(rank=rank, i11=int(i11), i12=int(i12), i13=int(i13), i2=i2)
    return pmi, best[np.arange(len(i2)), i2]


def select_ri(cfg: CodebookConfig, h: np.ndarray, snr_db: float, max_rank: int,
              subband_of_row: np.ndarray | None = None) -> tuple[Pmi, np.ndarray]:
    """Rank 1..min(max_rank, num_ue_ant) with the most summed mutual information (ties: lower rank).

    Same inputs and outputs as :func:`select_pmi`; the Pmi's ``rank`` is the RI.
    """
    best = None
    for rank in range(1, min(max_rank, np.shape(h)[1]) + 1):
        pmi, mi = select_pmi(cfg, h, snr_db, rank, subband_of_row)
        if best is None or mi.sum() > best[1].sum():
            best = (pmi, mi)
    return best


def precoder(cfg: CodebookConfig, pmi: Pmi) -> np.ndarray:
    """The reported codeword per subband: [S, P, rank] complex128, unit-norm columns."""
    w = codewords(cfg, pmi.rank)[pmi.i11, pmi.i12, pmi.i13]                          # [i2, P, rank]
    return w[pmi.i2]


@dataclass(frozen=True)
class ReportBits:
    """Bits of one CSI report (38.212 Tables 6.3.1.1.2-1 and -3); i2 counts every subband sent."""
    ri: int
    cqi: int
    i11: int
    i12: int
    i13: int
    i2: int

    @property
    def total(self) -> int:
        return self.ri + self.cqi + self.i11 + self.i12 + self.i13 + self.i2


def _bits(num_values: int) -> int:
    return math.ceil(math.log2(num_values)) if num_values > 1 else 0


def ri_bits(cfg: CodebookConfig, max_rank: int) -> int:
    """38.212 Table 6.3.1.1.2-3: min(2 for 4 ports, 3 above; ceil(log2 n_RI)), n_RI = ranks 1..max_rank."""
    return min(2 if cfg.num_ports == 4 else 3, _bits(max_rank))


def report_bits(cfg: CodebookConfig, rank: int, max_rank: int, num_subbands: int,
                subband_pmi: bool) -> ReportBits:
    """Bits of a report of ``rank``: RI, wideband CQI, wideband i1, and i2 once or per subband.

    i1,1: ceil(log2 N1O1), i1,2: ceil(log2 N2O2), i1,3: ceil(log2 |Table 5.2.2.2.1-3 row|) for
    rank 2, i2: ceil(log2 num_i2) (2 bits rank 1, 1 bit rank 2, 0 single-polarised).
    """
    _check_rank(rank)
    if rank > max_rank:
        raise ValueError(f"rank {rank} above max_rank {max_rank}")
    i2_per = _bits(cfg.num_i2(rank))
    return ReportBits(ri=ri_bits(cfg, max_rank), cqi=WIDEBAND_CQI_BITS,
                      i11=_bits(cfg.n1 * cfg.o1), i12=_bits(cfg.n2 * cfg.o2),
                      i13=_bits(len(cfg.i13_offsets(rank))),
                      i2=i2_per * (num_subbands if subband_pmi else 1))
