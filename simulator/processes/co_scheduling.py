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
from simulator.scheduler.prb_groups import group_subcarriers


class CoScheduling:
    """ues: the UE contexts in scheduler order; group_sizes_prbs [G]; data_re_per_prb; slot_s."""

    def __init__(self, ues: list, group_sizes_prbs: np.ndarray, data_re_per_prb: int, slot_s: float):
        self.ues = ues
        self.group_sizes_prbs = np.asarray(group_sizes_prbs)
        self.group_sc = group_subcarriers(self.group_sizes_prbs)
        self.re_per_group = self.group_sizes_prbs * data_re_per_prb
        self.slot_s = slot_s

    # -- what the gNB holds -----------------------------------------------------------------------
    def _held(self, members: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """rows [n, K, gnb] (sqrt(rho_k) w_k^H on each row's group) of sets members [n, K], and [n, K] bool:
        the member has reported a precoder (one that has not is served alone on gNB antenna 0, as before
        any report in the single-user path, and never co-scheduled)."""
        w, rho, held = self._held_state()
        rows = np.sqrt(rho[members])[..., None] * np.conj(w[members, groups[:, None]])
        return rows, held[members]

    def _held_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """w [U, G, gnb] each UE's reported direction per group (e_0 before a report), rho [U] its CQI's
        SINR (1 before a report) and held [U]; rebuilt when a report has changed them."""
        key = tuple((id(ctx.link.precoder), ctx.link.sinr_est_db) for ctx in self.ues)
        if key != getattr(self, "_key", None):
            num_gnb = self.ues[0].ue.channel.num_gnb_ant
            w = np.zeros((len(self.ues), len(self.group_sc), num_gnb), np.complex128)
            w[:, :, 0] = 1.0
            rho, held = np.ones(len(self.ues)), np.zeros(len(self.ues), bool)
            for u, ctx in enumerate(self.ues):
                if ctx.link.precoder is not None:
                    w[u], rho[u], held[u] = ctx.link.precoder.w, 10.0 ** (ctx.link.sinr_est_db / 10.0), True
            self._key, self._state = key, (w, rho, held)
        return self._state

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
        links = [ctx.link for ctx in self.ues]
        table = links[0].olla.table
        offset = np.array([link.olla.offset_db for link in links])
        best = np.stack([link.olla.mcs_of_snr_index() for link in links])           # [U, num_snr]
        mcs = best[members, table.snr_index(sinr_db - offset[members])]            # OLLA's pick per member
        rate = table.se[mcs] * self.re_per_group[groups][:, None] / self.slot_s
        rate[~held.all(axis=1)] = 0.0                # a set with a UE that has not reported: not co-scheduled
        out = np.zeros(ue_sets.shape)
        out[:, :k] = rate
        return out

    # -- what the UEs receive -----------------------------------------------------------------------
    def slot_sinr(self, slot: int, ue_sets: np.ndarray) -> dict[int, tuple[np.ndarray, float, set]]:
        """The slot's allocation ue_sets [G, M] (-1 pads) -> per scheduled UE index: (per-RE SINR [REs of its
        groups in group order] linear, its own stream's mean gain over one gNB antenna's in dB, the UEs
        co-scheduled with it on any group). Batched: one channel product per scheduled UE (on its groups'
        subcarriers), one RZF / SINR call per set size and group width."""
        sizes = (ue_sets >= 0).sum(axis=1)
        scheduled = np.unique(ue_sets[ue_sets >= 0])
        groups_of = {int(u): np.flatnonzero((ue_sets == u).any(axis=1)) for u in scheduled}
        h_of = {}                                                     # UE -> {group: [ue_ant, gnb, L]}
        for u, gs in groups_of.items():
            h = self.ues[u].ue.channel.cfr_slot_sc(slot, np.concatenate([self.group_sc[g] for g in gs]))
            edges = np.cumsum([0] + [len(self.group_sc[g]) for g in gs])
            h_of[u] = {int(g): h[..., edges[i]:edges[i + 1]] for i, g in enumerate(gs)}
        sinr_of: dict[tuple[int, int], np.ndarray] = {}               # (UE, group) -> [L]
        gain_of: dict[tuple[int, int], float] = {}
        widths = np.array([len(sc) for sc in self.group_sc])
        for k in np.unique(sizes[sizes > 0]):
            for width in np.unique(widths[sizes == k]):
                gs = np.flatnonzero((sizes == k) & (widths == width))
                members = ue_sets[gs, :k]                             # [n, K]
                w = self.precoders(members, gs)                       # [n, gnb, K]
                h = np.stack([np.stack([h_of[int(u)][int(g)] for u in row]) for row, g in zip(members, gs)])
                g_kj = precoded_channels(h, w[:, None], int(width))   # [n, K, ue, K, L]
                snr_db = np.array([[float(self.ues[u].ue.snr_db[slot]) for u in row] for row in members])
                sinr = mu_sinr(g_kj, snr_db)                          # [n, K, L]
                own = np.einsum("nkuks->nkus", g_kj)
                gain = (own.real ** 2 + own.imag ** 2).sum(axis=2).mean(axis=-1)     # [n, K]
                for (i, j), u in np.ndenumerate(members):
                    sinr_of[int(u), int(gs[i])] = sinr[i, j]
                    gain_of[int(u), int(gs[i])] = float(gain[i, j])
        out = {}
        for u, gs in groups_of.items():
            co = {int(v) for g in gs for v in ue_sets[g] if v >= 0 and v != u}
            per_antenna = self.ues[u].ue.channel.mean_power_per_gnb_antenna(slot)
            mean_gain = np.mean([gain_of[u, int(g)] for g in gs])
            gain_db = float(10.0 * np.log10(mean_gain / per_antenna)) if per_antenna > 0 and mean_gain > 0 else 0.0
            out[u] = (np.concatenate([sinr_of[u, int(g)] for g in gs]), gain_db, co)
        return out
