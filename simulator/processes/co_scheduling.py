"""MU-MIMO in the scheduled cell: the rates the gNB expects of a co-scheduled set, and the SINR the UEs
then get on their true channels (``scheduler.max_ues_per_prb`` > 1; with ``keep_channels`` also the
precoded channels the link_level chain needs).

PRB groups and precoding subbands coincide (the schema requires it), so group g is subband g of
every report. What the gNB holds of UE k on group g is its reported direction w_k (the report's
precoder: a Type I codeword, the ideal or reconstructed dominant eigenvector) and its single-user
SINR estimate rho_k, the SINR its CQI maps to (``UeLink.sinr_est_db``, i.e. snr ||H_k w_k||^2 as the UE
measured it, before OLLA). Its effective row is sqrt(rho_k) w_k^H in units of the noise, and the
set's precoder is regularised zero-forcing over those rows (``simulator.phy.mu_precoding``: power
split equally over the K streams, alpha = K).

- Expected rates (the scheduler's ``set_rate_fn``): on the held rows, member k's SINR is
  |r_k W_k|^2 / (1 + sum_{j != k} |r_k W_j|^2); the MCS OLLA picks at it with the UE's offset (its MU
  loop's with ``scheduler.mu_mcs: set_estimate``, else its one loop's) and that MCS's spectral
  efficiency on the group's data REs give the rate. The held CSI itself is taken at face value: the
  residual interference imperfect CSI leaves is what the transmission then meets, and only the MU
  offset, learnt from the UE's MU blocks, tells the search how far short they fall.
- MCS of a co-scheduled block: with ``set_estimate`` the MU loop's pick at ``expected_sinr_db`` (the
  mean over its groups of those expected SINRs); with ``su_cqi`` the UE's single-user CQI through its
  one loop, which then has to absorb the interference alone.
- Transmissions (``slot_sinr``): each group's members receive the set's streams on their true
  channels of the slot, and each equalises its own stream by LMMSE with the others as interference
  (``mu_sinr``); a UE's block gets the per-RE SINR of all its groups.

Cost: the gNB's state is taken once a slot (``begin_slot``), the expected rates come from K x K Gram
matrices of the held rows, the sets the search keeps are not solved again (their inverses give the
RZF precoders and the expected SINRs of the MCS choice), and a slot's transmissions are one
path-domain product per scheduled UE and one ``mu_sinr`` call (tests/simulator/processes/test_co_scheduling.py
checks both against the group-by-group computation; tests/benchmarks/bench_cell.py times the loop).
"""
from __future__ import annotations

import numpy as np

from simulator.phy.mu_precoding import mu_sinr
from simulator.scheduler.prb_groups import group_subcarriers


class CoScheduling:
    """ues: the UE contexts in scheduler order; group_sizes_prbs [G]; data_re_per_prb; slot_s."""

    def __init__(self, ues: list, group_sizes_prbs: np.ndarray, data_re_per_prb: int, slot_s: float, *,
                 keep_channels: bool = False):
        self.ues = ues
        self.keep_channels = keep_channels           # link_level: the precoded channels go with the SINR
        self.group_sizes_prbs = np.asarray(group_sizes_prbs)
        self.group_sc = group_subcarriers(self.group_sizes_prbs)
        self.re_per_group = self.group_sizes_prbs * data_re_per_prb
        self.widths_sc = np.array([len(sc) for sc in self.group_sc])
        self.width_sc = int(self.widths_sc[0])           # the subband of precoded_groups: every group but the last
        if any(sc[0] != g * self.width_sc for g, sc in enumerate(self.group_sc)) or self.widths_sc.max() > self.width_sc:
            raise ValueError(f"co-scheduling needs PRB groups of one size from the carrier's first PRB "
                             f"(the last may be shorter), got {list(self.group_sizes_prbs)}")
        self.slot_s = slot_s

    @property
    def mu_olla(self) -> bool:
        """The UEs run an MU OLLA loop (``scheduler.mu_mcs: set_estimate``; ``UeLink.olla_mu``)."""
        return self.ues[0].link.olla_mu is not None

    # -- what the gNB holds -----------------------------------------------------------------------
    def begin_slot(self) -> None:
        """Take the gNB's state for this slot's decisions: the held CSI (rebuilt when a report has changed
        it) and each UE's OLLA offset and MCS choice per SINR (they change only between slots)."""
        links = [ctx.link for ctx in self.ues]
        key = tuple((id(link.precoder), link.sinr_est_db) for link in links)
        if key != getattr(self, "_key", None):
            self._key, self._state = key, self._held_state(links)
        # the loop a co-scheduled block's MCS comes from (the MU one under set_estimate)
        loops = [link.olla_of(True) for link in links]
        self._offset_db = np.array([loop.offset_db for loop in loops])
        best = [loop.mcs_of_snr_index() for loop in loops]          # rebuilt only when a BLER target changes
        if any(x is not y for x, y in zip(best, getattr(self, "_mcs_src", ()))) or not hasattr(self, "_mcs_src"):
            self._mcs_src, self._mcs_of_snr = best, np.stack(best)                                   # [U, num_snr]
        self._table = links[0].olla.table
        self._solved: dict[int, tuple] = {}        # set size -> the slot's sets solved so far (``_solve``)

    def _held_state(self, links: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """rows [U, G, gnb] each UE's held row per group, sqrt(rho_u) w_u^H (w_u its reported direction, e_0
        before a report; rho_u its CQI's SINR, 1 before a report), their Gram matrices gram [G, U, U]
        (rows_u . rows_v^*), and held [U]: the UE has reported a precoder (one that has not is served alone
        on gNB antenna 0, as before any report in the single-user path, and never co-scheduled)."""
        num_gnb = self.ues[0].ue.channel.num_gnb_ant
        w = np.zeros((len(links), len(self.group_sc), num_gnb), np.complex128)
        w[:, :, 0] = 1.0
        rho, held = np.ones(len(links)), np.zeros(len(links), bool)
        for u, link in enumerate(links):
            if link.precoder is not None:
                w[u], rho[u], held[u] = link.precoder.w, 10.0 ** (link.sinr_est_db / 10.0), True
        rows = np.sqrt(rho)[:, None, None] * np.conj(w)
        by_group = np.swapaxes(rows, 0, 1)                                   # [G, U, gnb]
        return rows, by_group @ np.swapaxes(by_group.conj(), 1, 2), held

    def set_rate_fn(self, ue_sets: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The scheduler's callback: ue_sets [n, M] (members first, -1 pads; one size per call), groups [n]
        -> [n, M] bit/s each member's expected rate with its set co-scheduled: the MCS its OLLA offset
        picks at the expected SINR (``_held_sinr_db``) and that MCS's spectral efficiency on the group's
        data REs."""
        k = int((ue_sets[0] >= 0).sum())
        members = ue_sets[:, :k]
        held = self._state[2]
        table = self._table
        sinr_db = self._solve(members, groups)[0]
        mcs = self._mcs_of_snr[members, table.snr_index(sinr_db - self._offset_db[members])]   # OLLA's pick
        rate = table.se[mcs] * self.re_per_group[groups][:, None] / self.slot_s
        rate[~held[members].all(axis=1)] = 0.0     # a set with a UE that has not reported: not co-scheduled
        out = np.zeros(ue_sets.shape)
        out[:, :k] = rate
        return out

    def _solve(self, members: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """members [n, K] sets of one size K > 1 on groups [n] -> (sinr_db [n, K] the SINR the gNB expects of
        each member on the held rows, b [n, K, K] the inverse the set's RZF is made of: ``_held_sinr_db``).

        Kept for the slot: the scheduler's search solves every set it tries, the sets it keeps are among
        them, and the slot's expected SINRs (``expected_sinr_db``) and precoders (``slot_sinr``) are read
        back instead of solved again (a set not found is solved; the numbers are the same either way:
        each set's inverse is its own LAPACK call)."""
        k = members.shape[1]
        memo = self._solved.get(k)
        if memo is not None:
            at = np.full(len(self.group_sc), -1)
            at[memo[0]] = np.arange(len(memo[0]))
            i = at[groups]
            found = (i >= 0) & (memo[1][np.maximum(i, 0)] == members).all(axis=1)
            if found.all():
                return memo[2][i], memo[3][i]
        sinr_db, b = self._held_sinr_db(members, groups)
        if memo is None:
            self._solved[k] = (groups, members, sinr_db, b)
        return sinr_db, b

    def _held_sinr_db(self, members: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """members [n, K] sets of one size on groups [n] -> ([n, K] the SINR (dB) the gNB expects of each
        member on the held rows, |r_k W_k|^2 / (1 + sum_{j != k} |r_k W_j|^2) with W the set's RZF, and
        B [n, K, K] below).

        From the sets' Gram matrices of held rows alone (K x K, not K x gnb): with G = F F^H and
        A = G + K I, RZF gives W ~ F^H A^-1, F W_j = (G A^-1) e_j / (sqrt(K) ||W_j||), G A^-1 = I - K A^-1
        and ||W_j||^2 = (A^-1 G A^-1)_jj = (A^-1 - K A^-2)_jj, so one K x K inverse B = A^-1 gives
        p_kj = |I - K B|_kj^2 / (K (B_jj - K sum_l |B_jl|^2))."""
        k = members.shape[1]
        gram = self._state[1]
        d = np.arange(k)
        a = gram[groups[:, None, None], members[:, :, None], members[:, None, :]]     # a copy: [n, K, K]
        a[:, d, d] += k
        b = np.linalg.inv(a)
        b2 = b.real ** 2 + b.imag ** 2
        diag = b[:, d, d].real
        norm2 = np.maximum(diag - k * b2.sum(axis=-1), np.finfo(np.float64).tiny)   # ||W_j||^2
        p = k * b2 / norm2[:, None, :]                       # off-diagonal: |K B_kj|^2 / (K ||W_j||^2)
        own = (1.0 - k * diag) ** 2 / (k * norm2)
        return 10.0 * np.log10(np.maximum(own / (1.0 + p.sum(axis=-1) - p[:, d, d]), 1e-30)), b

    def _precoders(self, sets: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The slot's RZF precoders: sets [n, M] (members first, -1 pads) on groups [n] -> W [n, gnb, M]
        complex128, ``rzf_precoder`` of each set's held rows (alpha = K, ||w_j|| = 1 / sqrt(K), zero
        columns for pads): W = F^H B with the set's B of ``_solve``, each column scaled to its norm; a
        set of one is the UE's held direction."""
        n, m = sets.shape
        member = sets >= 0
        sizes = member.sum(axis=1)
        f = self._state[0][np.where(member, sets, 0), groups[:, None]]              # [n, M, gnb]
        f[~member] = 0.0
        b = np.zeros((n, m, m), np.complex128)                                       # B, zero for pads
        for k in np.unique(sizes).tolist():
            at = np.flatnonzero(sizes == k)
            b[at, :k, :k] = self._solve(sets[at, :k], groups[at])[1] if k > 1 else 1.0   # K = 1: F^H itself
        w = np.swapaxes(f.conj(), 1, 2) @ b                                          # [n, gnb, M]
        norm = np.sqrt((w.real ** 2 + w.imag ** 2).sum(axis=1, keepdims=True))
        w /= np.sqrt(sizes)[:, None, None] * np.maximum(norm, np.finfo(np.float64).tiny)
        return w

    def expected_sinr_db(self, ue_sets: np.ndarray) -> dict[int, float]:
        """The slot's allocation ue_sets [G, M] -> for each UE co-scheduled on some group, the mean over its
        groups of the SINR (dB) the gNB expects of it there (``_held_sinr_db`` of each group's set; a
        group it has alone counts its single-user estimate, its CQI's SINR): its MU block's MCS before
        the MU OLLA offset (``scheduler.mu_mcs: set_estimate``)."""
        sizes = (ue_sets >= 0).sum(axis=1)
        if sizes.max() < 2:
            return {}
        rho_db = np.array([ctx.link.sinr_est_db if ctx.link.sinr_est_db is not None else np.nan for ctx in self.ues])
        ues, values = [], []
        for k in np.unique(sizes[sizes > 0]).tolist():
            groups = np.flatnonzero(sizes == k)
            members = ue_sets[groups, :k]
            ues.append(members.ravel())
            values.append((self._solve(members, groups)[0] if k > 1 else rho_db[members]).ravel())
        ues, values = np.concatenate(ues), np.concatenate(values)
        mean = np.bincount(ues, values, len(self.ues)) / np.maximum(np.bincount(ues, None, len(self.ues)), 1)
        co = np.unique(ue_sets[sizes > 1])
        return {u: float(mean[u]) for u in co[co >= 0].tolist()}

    # -- what the UEs receive -----------------------------------------------------------------------
    def slot_sinr(self, slot: int, ue_sets: np.ndarray) -> dict[int, tuple]:
        """The slot's allocation ue_sets [G, M] (-1 pads) -> per scheduled UE index: (per-RE SINR [REs of its
        groups in group order] linear, its own stream's mean gain over one gNB antenna's in dB, the UEs
        co-scheduled with it on any group, and with ``keep_channels`` its own stream's precoded channel
        h [ue_ant, REs] complex64 and the other M - 1 streams' h_int [ue_ant, M - 1, REs] (zero for a set's
        pads), else None, None).

        Batched over the slot: the precoders come from the inverses the scheduler's search solved
        (``_precoders``), every set padded with zero columns to the slot's largest set (m streams; h_int
        is padded on to M - 1), so one path-domain product per scheduled UE gives its precoded channels
        of all m streams on its groups (``FadingChannel.precoded_groups``), and one ``mu_sinr`` call the
        SINR of every member. A slot of single-user groups alone (most of them under set_estimate) is
        then one stream per group."""
        sizes = (ue_sets >= 0).sum(axis=1)
        active = np.flatnonzero(sizes)
        m = int(sizes.max())
        sets = ue_sets[active, :m]                                    # [n, m]
        n = len(sets)
        member = sets >= 0
        w = self._precoders(sets, active)                             # [n, gnb, m]
        width = self.width_sc
        ue_ant = self.ues[0].ue.channel.num_ue_ant
        g = np.zeros((n, m, ue_ant, m, width), np.complex64)         # [set, member, ue_ant, stream, L]
        snr_db = np.zeros((n, m))
        flat = sets[member]                                           # the members, set by set
        where = {}
        for u in sorted(set(flat.tolist())):
            i, j = np.nonzero(sets == u)                              # the UE's sets (ascending) and its place
            where[u] = (i, j)
            ue = self.ues[u].ue
            g[i, j] = ue.channel.precoded_groups(slot, w[i], active[i], width)
            snr_db[i, j] = ue.snr_db[slot]
        sinr = mu_sinr(g, snr_db)                                     # [n, m, L]
        own = np.einsum("nkuks->nkus", g)[member]                     # [members, ue_ant, L]
        gain = (own.real.astype(np.float64) ** 2 + own.imag.astype(np.float64) ** 2).sum(axis=1).mean(axis=-1)
        mean_gain = np.bincount(flat, gain, len(self.ues)) / np.maximum(np.bincount(flat, None, len(self.ues)), 1)
        full = self.widths_sc[active] == width                        # groups of the full width
        num_interferers = ue_sets.shape[1] - 1
        out = {}
        for u, (i, j) in where.items():
            co = set(sets[i].ravel().tolist()) - {u, -1}
            gain_db = self.ues[u].ue.channel.gain_over_antenna_db(slot, float(mean_gain[u]))
            widths = None if full[i].all() else self.widths_sc[active[i]]
            re = sinr[i, j].reshape(-1) if widths is None else _by_re(sinr[i, j], widths)
            h = h_int = None
            if self.keep_channels:
                streams = g[i, j]                                       # [groups, ue_ant, m, L]
                others = np.arange(m)[None, :] != j[:, None]            # [groups, m]
                h = _by_re(streams[np.arange(len(i)), :, j], widths)    # [ue_ant, REs]
                h_int = np.zeros((ue_ant, num_interferers, len(re)), np.complex64)   # [ue_ant, M - 1, REs]
                if m > 1:
                    h_int[:, :m - 1] = _by_re(np.stack([s[:, o] for s, o in zip(streams, others)]), widths)
            out[u] = (re, gain_db, co, h, h_int)
        return out


def _by_re(x: np.ndarray, widths: np.ndarray | None) -> np.ndarray:
    """x [groups, ..., L] per group -> [..., REs]: the groups' subcarriers in group order, each cut to its
    width (None: every group is L wide)."""
    if widths is None:
        return np.moveaxis(x, 0, -2).reshape(*x.shape[1:-1], -1)
    return np.concatenate([part[..., :w] for part, w in zip(x, widths)], axis=-1)
