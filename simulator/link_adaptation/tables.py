"""38.214 MCS, TBS and CQI tables and the TBLER lookup the abstraction and link adaptation share.

MCS decoding and transport-block sizing come from Sionna (``decode_mcs_index``,
``calculate_tb_size``); BLER curves, their interpolation and the EESM beta values come
from Sionna SYS (``PHYAbstraction``, ``EESM``). They are resolved once per run into
small numpy arrays because the allocation (PRBs, DMRS) is fixed: a per-slot lookup is
then an index operation instead of a TensorFlow call (Sionna SYS costs ~12 ms per
eager call; the engine needs tens of microseconds per slot).
"""
from __future__ import annotations

import functools
import math
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

PDSCH_CATEGORY = 1  # Sionna SYS table category: 0 = PUSCH, 1 = PDSCH
NUM_OFDM_SYMBOLS = 14


def cqi_table(index: int) -> np.ndarray:
    """[15, 2] (Qm, code rate) for CQI 1..15 of 38.214 CQI table ``index``."""
    data = json.loads(resources.files("simulator").joinpath("data/cqi_tables.json").read_text())
    arr = np.asarray(data[str(index)], dtype=np.float64)
    return np.stack([arr[:, 0], arr[:, 1] / 1024.0], axis=1)


def num_data_re(num_prbs: int, num_dmrs_symbols: int) -> int:
    """Data resource elements per slot: DMRS symbols carry no data (2 CDM groups without data)."""
    return 12 * num_prbs * (NUM_OFDM_SYMBOLS - num_dmrs_symbols)


@dataclass(frozen=True)
class McsEntry:
    mcs: int
    modulation_order: int
    code_rate: float
    tbs_bits: int
    cb_size: int
    num_cb: int

    @property
    def spectral_efficiency(self) -> float:
        return self.modulation_order * self.code_rate


@functools.lru_cache(maxsize=8)
def num_mcs(mcs_table: int) -> int:
    """PDSCH MCS indices of a 38.214 MCS table (Table 5.1.3.1-1: 0-28; Table 5.1.3.1-2: 0-27; the
    reserved indices above them are retransmission-only and not used here)."""
    return 28 if mcs_table == 2 else 29


def mcs_entries(mcs_table: int, num_prbs: int, num_dmrs_symbols: int, num_layers: int = 1) -> tuple[McsEntry, ...]:
    """All PDSCH MCS indices of ``mcs_table`` with their TBS for a full allocation of ``num_prbs`` on
    ``num_layers`` layers (one codeword)."""
    from sionna.phy.nr.utils import calculate_tb_size, decode_mcs_index

    mcs = np.arange(num_mcs(mcs_table), dtype=np.int32)
    qm, rate = decode_mcs_index(mcs, table_index=mcs_table, is_pusch=False)
    qm, rate = np.asarray(qm, dtype=np.int64), np.asarray(rate, dtype=np.float64)
    tbs, cbs, ncb, *_ = calculate_tb_size(qm, rate.astype(np.float32), num_prbs=num_prbs,
                                          num_ofdm_symbols=NUM_OFDM_SYMBOLS,
                                          num_dmrs_per_prb=12 * num_dmrs_symbols, num_layers=num_layers,
                                          return_cw_length=False)
    return tuple(McsEntry(int(m), int(q), float(r), int(t), int(c), int(n))
                 for m, q, r, t, c, n in zip(mcs, qm, rate, np.asarray(tbs), np.asarray(cbs), np.asarray(ncb)))


SIONNA_TABLE_FILES = ("PUSCH_table1.json", "PUSCH_table2.json", "PDSCH_table1.json", "PDSCH_table2.json",
                      "PDSCH_table3.json", "PDSCH_table4.json")


def bler_table_files(source: str = "airtune") -> list[str]:
    """BLER table files for ``PHYAbstraction(load_bler_tables_from=...)``.

    ``sionna``: the tables Sionna ships. ``airtune``: the same, with the MCS entries that
    ``simulator/link_adaptation/calibrate.py`` regenerated on a fine grid replacing Sionna's.
    """
    import os

    import sionna.sys

    from simulator.link_adaptation.calibrate import calibrated_table_files

    base = os.path.join(os.path.dirname(sionna.sys.__file__), "bler_tables")
    files = [os.path.join(base, f) for f in SIONNA_TABLE_FILES]
    if source == "airtune":
        files += calibrated_table_files()
    elif source != "sionna":
        raise ValueError(f"unknown BLER table source {source!r}; valid: airtune, sionna")
    return files


class BlerTable:
    """TBLER(mcs, effective SINR) and EESM for one MCS table and one fixed allocation.

    Built from Sionna SYS ``PHYAbstraction.bler_table_interp`` (BLER per code block on a
    0.1 dB SINR grid, -5..30 dB, interpolated over code-block size) and ``EESM.beta_tensor``.
    ``source`` picks the tables (see ``bler_table_files``).
    ``tbler[mcs, k] = 1 - (1 - bler[mcs, cbs(mcs), k]) ** num_cb(mcs)``, exactly as
    ``PHYAbstraction.call`` computes it; unavailable MCS (no table) have ``inf``. With
    ``num_layers`` 2 the codeword spans two layers: twice the TBS, and the code blocks of that TBS.
    """

    def __init__(self, mcs_table: int, num_prbs: int, num_dmrs_symbols: int, source: str = "airtune",
                 num_layers: int = 1):
        from sionna.sys import EESM, PHYAbstraction

        pa = PHYAbstraction(load_bler_tables_from=bler_table_files(source))
        self.num_layers = num_layers
        self.entries = mcs_entries(mcs_table, num_prbs, num_dmrs_symbols, num_layers)
        snr_min, snr_max, snr_step = pa.snr_db_interp_min_max_delta
        self.snr_min_db, self.snr_step_db = float(snr_min), float(snr_step)
        interp = pa.bler_table_interp.numpy()[PDSCH_CATEGORY, mcs_table - 1]   # [mcs, cbs_idx, snr]
        self.num_snr = interp.shape[-1]
        cbs_min, _, cbs_step = pa.cbs_interp_min_max_delta
        num_cbs = interp.shape[1]
        tbler = np.full((len(self.entries), self.num_snr), np.inf, dtype=np.float32)
        for e in self.entries:
            cbs_idx = int(np.clip(np.round((e.cb_size - cbs_min) / cbs_step), 0, num_cbs - 1))
            bler = interp[e.mcs, cbs_idx].astype(np.float32)
            if np.all(np.isfinite(bler)):
                tbler[e.mcs] = 1.0 - np.power(1.0 - bler, np.float32(e.num_cb))
        self.tbler = tbler                                    # [num_mcs, num_snr]
        self.available = np.isfinite(tbler[:, 0])              # [num_mcs] bool
        self.lowest_mcs = int(np.argmax(self.available))
        self.beta = EESM().beta_tensor.numpy()[mcs_table - 1, : len(self.entries)].astype(np.float64)
        self.tbs_bits = np.array([e.tbs_bits for e in self.entries], dtype=np.int64)
        self.se = np.array([e.spectral_efficiency for e in self.entries])
        # Effective-SINR clamp of Sionna's EESM (dB)
        self.eesm_min_db, self.eesm_max_db = -30.0, 30.0

    def snr_index(self, sinr_eff_db):
        """Nearest grid index, as ``PHYAbstraction.get_idx_from_grid``."""
        idx = np.round((np.asarray(sinr_eff_db) - self.snr_min_db) / self.snr_step_db)
        return np.clip(idx, 0, self.num_snr - 1).astype(np.int64)

    def snr_index_scalar(self, sinr_eff_db: float) -> int:
        """Scalar ``snr_index`` without numpy call overhead (the per-slot path)."""
        k = int(round((sinr_eff_db - self.snr_min_db) / self.snr_step_db))
        return 0 if k < 0 else (self.num_snr - 1 if k >= self.num_snr else k)

    def tbler_scalar(self, mcs: int, sinr_eff_db: float) -> float:
        """Scalar ``tbler_at`` (the per-slot path)."""
        return float(self.tbler[mcs, self.snr_index_scalar(sinr_eff_db)])

    def tbler_at(self, mcs, sinr_eff_db):
        """TBLER for ``mcs`` [...] int at ``sinr_eff_db`` [...] (broadcast)."""
        return self.tbler[mcs, self.snr_index(sinr_eff_db)]

    def eesm_db(self, sinr_re, mcs: int) -> float:
        """EESM effective SINR (dB) of per-RE linear SINR ``sinr_re`` [num_re] for ``mcs``."""
        beta = self.beta[mcs]
        m = float(np.exp(sinr_re * (-1.0 / beta)).mean())
        if m <= 0.0:                     # every RE far above beta: clamp at the top, as Sionna does
            return self.eesm_max_db
        val = -beta * math.log(m)
        val_db = 10.0 * math.log10(val) if val > 0 else self.eesm_min_db
        return min(max(val_db, self.eesm_min_db), self.eesm_max_db)

    def eesm_db_all(self, sinr_re) -> np.ndarray:
        """EESM (dB) of ``sinr_re`` [num_re] for every MCS -> [num_mcs]."""
        with np.errstate(divide="ignore"):
            m = np.mean(np.exp(-sinr_re[None, :] / self.beta[:, None]), axis=1)
            val = np.where(m > 0, -self.beta * np.log(np.where(m > 0, m, 1.0)), np.inf)
            val_db = 10.0 * np.log10(np.maximum(val, 1e-30))
        return np.clip(val_db, self.eesm_min_db, self.eesm_max_db)

    def best_mcs(self, sinr_eff_db_per_mcs, bler_target: float) -> int:
        """Highest available MCS with TBLER <= target (lowest available if none), as Sionna ILLA."""
        t = self.tbler[np.arange(len(self.entries)), self.snr_index(sinr_eff_db_per_mcs)]
        ok = np.flatnonzero(t <= bler_target)
        return int(ok[-1]) if ok.size else self.lowest_mcs

    def threshold_db(self, mcs: int, bler_target: float) -> float:
        """Lowest grid SINR (dB) at which ``mcs`` reaches TBLER <= target."""
        ok = np.flatnonzero(self.tbler[mcs] <= bler_target)
        idx = ok[0] if ok.size else self.num_snr - 1
        return self.snr_min_db + self.snr_step_db * float(idx)


@functools.lru_cache(maxsize=128)
def bler_table(mcs_table: int, num_prbs: int, num_dmrs_symbols: int, source: str = "airtune",
               num_layers: int = 1) -> BlerTable:
    """Cached per process: building PHYAbstraction costs ~1 s."""
    return BlerTable(mcs_table, num_prbs, num_dmrs_symbols, source, num_layers)
