"""MU-MIMO in the scheduled cell: the rates the gNB expects of a co-scheduled set, and the SINR the UEs
then get on their true channels (``scheduler.max_ues_per_prb`` > 1, abstraction backend).

PRB groups and precoding subbands coincide (the schema requires it), so group g is subband g of
every report. What the gNB holds of UE k on group g is its reported direction w_k (the report's
precoder: a Type I codeword, the ideal or reconstructed dominant eigenvector) and its single-user
SINR estimate rho_k, the SINR its CQI maps to (``UeLink.sinr_est_db``, i.e. snr ||H_k w_k||^2 as the UE
measured it, before OLLA). Its effective row is sqrt(rho_k) w_k^H in units of the noise, and the
set's precoder is regularised zero-forcing over those rows (``simulator.phy.mu_precoding``: power
split equally over the K streams, alpha = K).

- Expected rates (the scheduler's ``set_rate_fn``): on the held rows, member k's SINR is
  |r_k w_k|^2 / (1 + sum_{j != k} |r_k w_j|^2); the MCS OLLA picks at it (with the UE's offset) and
  that MCS's spectral efficiency on the group's data REs give the rate. Held CSI is taken at face
  value: the residual interference imperfect CSI leaves is what the transmission then meets.
- Transmissions (``slot_sinr``): each group's members receive the set's streams on their true
  channels of the slot, and each equalises its own stream by LMMSE with the others as interference
  (``mu_sinr``); a UE's block gets the per-RE SINR of all its groups. The CQI stays the UE's
  single-user measurement, so OLLA is what corrects for the interference (the textbook case).
"""
from __future__ import annotations

import numpy as np

from simulator.phy.mu_precoding import mu_sinr, precoded_channels, rzf_precoder


class CoScheduling:
    """ues: the UE contexts in scheduler order; group_sizes_prbs [G]; data_re_per_prb; slot_s."""

    def __init__(self, ues: list, group_sizes_prbs: np.ndarray, data_re_per_prb: int, slot_s: float):
        self.ues = ues
        self.group_sizes_prbs = np.asarray(group_sizes_prbs)
        starts = np.concatenate([[0], np.cumsum(self.group_sizes_prbs)[:-1]])
        self.group_sc = [np.arange(12 * s, 12 * (s + n)) for s, n in zip(starts, self.group_sizes_prbs)]
        self.re_per_group = self.group_sizes_prbs * data_re_per_prb
        self.slot_s = slot_s

    # -- what the gNB holds -----------------------------------------------------------------------
    def _held(self, members: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """rows [n, K, gnb] (sqrt(rho_k) w_k^H on each row's group) of sets members [n, K], and [n, K] bool:
        the member has reported a precoder (one that has not is served alone on gNB antenna 0, as before
        any report in the single-user path, and never co-scheduled)."""
        links = [ctx.link for ctx in self.ues]
        num_gnb = self.ues[0].ue.channel.num_gnb_ant
        rows = np.zeros(members.shape + (num_gnb,), np.complex128)
        held = np.zeros(members.shape, bool)
        for i, k in np.ndindex(members.shape):
            link = links[members[i, k]]
            if link.precoder is None:
                rows[i, k, 0] = 1.0
                continue
            held[i, k] = True
            rows[i, k] = np.sqrt(10.0 ** (link.sinr_est_db / 10.0)) * np.conj(link.precoder.w[groups[i]])
        return rows, held

    def precoders(self, members: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """W [n, gnb, K]: RZF of each set's held rows (0 dB: the rows carry the SNR)."""
        rows, _ = self._held(members, groups)
        return rzf_precoder(rows[:, None], 0.0)[:, 0]

    def set_rate_fn(self, ue_sets: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The scheduler's callback: ue_sets [n, M] (members first, -1 pads; one size per call), groups [n]
        -> [n, M] bit/s each member's expected rate with its set co-scheduled."""
        k = int((ue_sets[0] >= 0).sum())
        members = ue_sets[:, :k]
        rows, held = self._held(members, groups)
        w = rzf_precoder(rows[:, None], 0.0)[:, 0]                       # [n, gnb, K]
        p = np.abs(rows @ w) ** 2                                        # [n, K (UE), K (stream)]
        own = np.einsum("nkk->nk", p)
        sinr_db = 10.0 * np.log10(np.maximum(own / (1.0 + p.sum(axis=-1) - own), 1e-30))
        out = np.zeros(ue_sets.shape)
        for (i, j), u in np.ndenumerate(members):
            if not held[i].all():                       # a set with a UE that has not reported: not co-scheduled
                continue
            olla = self.ues[u].link.olla
            mcs = olla.select_mcs(float(sinr_db[i, j]))
            out[i, j] = olla.table.se[mcs] * self.re_per_group[groups[i]] / self.slot_s
        return out

    # -- what the UEs receive -----------------------------------------------------------------------
    def slot_sinr(self, slot: int, ue_sets: np.ndarray) -> dict[int, tuple[np.ndarray, float, set]]:
        """The slot's allocation ue_sets [G, M] (-1 pads) -> per scheduled UE index: (per-RE SINR [REs of its
        groups in group order] linear, its own stream's mean gain over one gNB antenna's in dB, the UEs
        co-scheduled with it on any group)."""
        per_ue: dict[int, list] = {}
        for g, row in enumerate(ue_sets):
            members = row[row >= 0]
            if members.size == 0:
                continue
            sc = self.group_sc[g]
            w = self.precoders(members[None], np.array([g]))[0]          # [gnb, K]
            h = np.stack([self.ues[u].ue.channel.cfr_slot_sc(slot, sc) for u in members])   # [K, ue, gnb, L]
            g_kj = precoded_channels(h, w[None], len(sc))                 # [K, ue, K, L]
            snr_db = np.array([float(self.ues[u].ue.snr_db[slot]) for u in members])
            sinr = mu_sinr(g_kj, snr_db)                                   # [K, L]
            own = np.einsum("kuks->kus", g_kj)
            gain = (own.real ** 2 + own.imag ** 2).sum(axis=1).mean(axis=-1)   # [K] ||H_k w_k||^2 (power split in)
            for k, u in enumerate(members):
                entry = per_ue.setdefault(int(u), [[], [], set()])
                entry[0].append(sinr[k])
                entry[1].append(gain[k])
                entry[2].update(int(v) for v in members if v != u)
        out = {}
        for u, (sinrs, gains, co) in per_ue.items():
            per_antenna = self.ues[u].ue.channel.mean_power_per_gnb_antenna(slot)
            gain_db = float(10.0 * np.log10(np.mean(gains) / per_antenna)) if per_antenna > 0 else 0.0
            out[u] = (np.concatenate(sinrs), gain_db, co)
        return out
