"""Type I single-panel codebook: unit-norm codewords, the vectorised search equals brute force, bit widths."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from simulator.csi.type1 import (SINGLE_POLARISED_N1_N2, SUPPORTED_N1_N2_O1_O2, codebook_config, codewords,
                                 dft_beams, precoder, report_bits, select_pmi, select_ri)

# dual-polarised (N1, N2) per polarisation, and the single-polarised 4 x 8 UPA (N1 = 8 columns, N2 = 4 rows)
ARRAYS = [(4, 1, True), (2, 2, True), (4, 2, True), (8, 1, True), (2, 1, True), (8, 4, False)]
IDS = [f"{n1}x{n2}{'dp' if dp else 'sp'}" for n1, n2, dp in ARRAYS]


def _rayleigh(rng, rows, ue_ant, ports):
    return (rng.standard_normal((rows, ue_ant, ports)) + 1j * rng.standard_normal((rows, ue_ant, ports))) / np.sqrt(2)


@pytest.mark.parametrize("n1,n2,dp", ARRAYS, ids=IDS)
@pytest.mark.parametrize("rank", [1, 2])
def test_codewords_have_unit_norm_orthogonal_columns(n1, n2, dp, rank):
    cfg = codebook_config(n1, n2, dp)
    w = codewords(cfg, rank)
    assert w.shape[:2] == (n1 * cfg.o1, n2 * cfg.o2) and w.shape[-2:] == (cfg.num_ports, rank)
    gram = np.einsum("...pi,...pj->...ij", w.conj(), w)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(rank), gram.shape), atol=1e-12)


def test_every_supported_array_has_orthogonal_rank2_layers():
    arrays = ([(n1, n2, True) for n1, n2 in SUPPORTED_N1_N2_O1_O2]
              + [(n1, n2, False) for n1, n2 in SINGLE_POLARISED_N1_N2])
    for n1, n2, dp in arrays:
        w = codewords(codebook_config(n1, n2, dp), 2)
        gram = np.einsum("...pi,...pj->...ij", w.conj(), w)
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(2), gram.shape), atol=1e-12)


def test_dft_beams_match_sionna_grid_of_beams_dft():
    from sionna.phy.mimo import grid_of_beams_dft
    for n1, n2, dp in ARRAYS:
        cfg = codebook_config(n1, n2, dp)
        sionna_gob = grid_of_beams_dft(n2, n1, cfg.o2, cfg.o1, precision="double").numpy()   # [m, l, port]
        np.testing.assert_allclose(dft_beams(cfg), np.transpose(sionna_gob, (1, 0, 2)), atol=1e-12)


def _brute_force(cfg, h, snr_db, rank, subband_of_row):
    """A Python loop over every (i1, i2): log2 det(I + snr/rank W^H H^H H W) from the explicit codewords."""
    w_all = codewords(cfg, rank)
    snr = 10 ** (snr_db / 10) / rank
    num_sb = subband_of_row.max() + 1
    best_i1, best_sum, best_i2 = None, -np.inf, None
    for i11, i12, i13 in itertools.product(*(range(s) for s in w_all.shape[:3])):
        total, i2s = 0.0, []
        for sb in range(num_sb):
            best_sb, best_n = -np.inf, None
            for n in range(w_all.shape[3]):
                w = w_all[i11, i12, i13, n]
                mi = 0.0
                for row in np.flatnonzero(subband_of_row == sb):
                    hw = h[row] @ w
                    mi += np.log2(np.linalg.det(np.eye(rank) + snr * hw.conj().T @ hw).real)
                if mi > best_sb:
                    best_sb, best_n = mi, n
            total += best_sb
            i2s.append(best_n)
        if total > best_sum:
            best_i1, best_sum, best_i2 = (i11, i12, i13), total, i2s
    return best_i1, best_i2


@pytest.mark.parametrize("n1,n2,dp", ARRAYS, ids=IDS)
@pytest.mark.parametrize("rank", [1, 2])
def test_vectorised_search_equals_brute_force(n1, n2, dp, rank):
    cfg = codebook_config(n1, n2, dp)
    rng = np.random.default_rng(100 * n1 + 10 * n2 + rank)
    subband_of_row = np.repeat(np.arange(3), 2)              # 6 subcarriers in 3 subbands
    for _ in range(2):
        h = _rayleigh(rng, len(subband_of_row), 2, cfg.num_ports)
        pmi, mi = select_pmi(cfg, h, 10.0, rank, subband_of_row)
        i1, i2 = _brute_force(cfg, h, 10.0, rank, subband_of_row)
        assert (pmi.i11, pmi.i12, pmi.i13) == i1
        assert pmi.i2.tolist() == i2
        w = precoder(cfg, pmi)                                 # [S, P, rank]
        assert w.shape == (3, cfg.num_ports, rank)
        hw = h @ w[subband_of_row]
        direct = np.log2(np.linalg.det(np.eye(rank) + 10 ** 1.0 / rank * hw.conj().swapaxes(-1, -2) @ hw).real)
        np.testing.assert_allclose(mi, np.bincount(subband_of_row, direct), rtol=1e-10)


@pytest.mark.parametrize("n1,n2,dp", ARRAYS, ids=IDS)
def test_line_of_sight_onto_a_codeword_finds_it(n1, n2, dp):
    cfg = codebook_config(n1, n2, dp)
    w_all = codewords(cfg, 1)
    rng = np.random.default_rng(7)
    for _ in range(3):
        target = tuple(int(rng.integers(s)) for s in w_all.shape[:4])
        w = w_all[target][:, 0]
        gains = rng.standard_normal(2) + 1j * rng.standard_normal(2)
        h = gains[None, :, None] * w.conj()[None, None, :]    # one subband, 2 UE antennas: H = g w^H
        pmi, _ = select_pmi(cfg, h, 0.0, 1)
        assert (pmi.i11, pmi.i12, pmi.i13, int(pmi.i2[0])) == target


def test_rank_two_line_of_sight_pair_is_found_and_ri_chooses_two():
    cfg = codebook_config(4, 2, True)
    w_all = codewords(cfg, 2)
    target = (5, 3, 2, 1)
    h = w_all[target].conj().T[None] * np.array([1.0, 0.8])[None, :, None]   # H = diag(g) W^H: [1, 2, 16]
    pmi, _ = select_ri(cfg, h, 20.0, max_rank=2)
    assert (pmi.rank, pmi.i11, pmi.i12, pmi.i13, int(pmi.i2[0])) == (2,) + target
    assert select_ri(cfg, h[:, :1], 20.0, max_rank=2)[0].rank == 1              # one UE antenna: rank 1


def test_ri_prefers_rank_one_on_a_rank_one_channel():
    cfg = codebook_config(4, 1, True)
    w = codewords(cfg, 1)[3, 0, 0, 2, :, 0]
    h = np.array([1.0, 0.5])[None, :, None] * w.conj()[None, None, :]
    assert select_ri(cfg, h, 10.0, max_rank=2)[0].rank == 1


@pytest.mark.parametrize("n1,n2,dp", [(3, 3, True), (5, 1, True), (1, 1, True), (8, 8, False), (4, 8, False)])
def test_unsupported_array_raises_with_the_valid_list(n1, n2, dp):
    with pytest.raises(ValueError) as err:
        codebook_config(n1, n2, dp, field="gnb.antenna_rows/antenna_cols")
    msg = str(err.value)
    assert msg.startswith("gnb.antenna_rows/antenna_cols:") and f"({n1}, {n2})" in msg
    assert ("(4,2)->(O1,O2)=(4,4)" in msg) if dp else ("(8,4)" in msg)


def test_report_bits_equal_the_38212_hand_count():
    # (N1,N2) = (4,2) dual-polarised, (O1,O2) = (4,4), 16 ports, rank 2 of max 2, 13 subbands, subband PMI.
    # 38.212 Table 6.3.1.1.2-3: RI min(3, ceil(log2 2)) = 1, wideband CQI 4.
    # Table 6.3.1.1.2-1 (codebookMode 1, rank 2): i1,1 ceil(log2 16) = 4, i1,2 ceil(log2 8) = 3,
    # i1,3 2 (N1 > N2 > 1: four values), i2 1 bit x 13 subbands = 13.  Total 1 + 4 + 4 + 3 + 2 + 13 = 27.
    bits = report_bits(codebook_config(4, 2, True), rank=2, max_rank=2, num_subbands=13, subband_pmi=True)
    assert (bits.ri, bits.cqi, bits.i11, bits.i12, bits.i13, bits.i2, bits.total) == (1, 4, 4, 3, 2, 13, 27)
    # (N1,N2) = (4,1), (O1,O2) = (4,1), 8 ports, rank 1 of max 1, wideband PMI: RI ceil(log2 1) = 0, CQI 4,
    # i1,1 ceil(log2 16) = 4, i1,2 ceil(log2 1) = 0, no i1,3, i2 2 bits once.  Total 0 + 4 + 4 + 0 + 0 + 2 = 10.
    bits = report_bits(codebook_config(4, 1, True), rank=1, max_rank=1, num_subbands=13, subband_pmi=False)
    assert (bits.ri, bits.cqi, bits.i11, bits.i12, bits.i13, bits.i2, bits.total) == (0, 4, 4, 0, 0, 2, 10)
    # (N1,N2) = (2,1), 4 ports, rank 2 of max 2, wideband: RI min(2, 1) = 1, CQI 4, i1,1 ceil(log2 8) = 3,
    # i1,3 1 bit ((N1,N2) = (2,1): two values), i2 1.  Total 1 + 4 + 3 + 0 + 1 + 1 = 10.
    bits = report_bits(codebook_config(2, 1, True), rank=2, max_rank=2, num_subbands=4, subband_pmi=False)
    assert bits.total == 10 and bits.i13 == 1
