"""38.901 fading from Sionna (TDL, CDL, UMi, UMa) or a Sionna RT scene, continuous in time over the whole run.

Sionna's models draw new sinusoid phases (TDL) or rays and phases (CDL, UMi, UMa) on every call,
so one realisation per UE spans the whole run (one sample per slot of travel at the UE's speed) and
the channel of any slot is read from that span, generated a chunk of samples at a time: TDL by
``continuous_tdl`` (Sionna's draws taken once, its sum of sinusoids evaluated per chunk), CDL/UMi/UMa
by ``continuous_38901`` (each call replays the first one's draws at the chunk's sample times); both
give the whole-run call's values bit for bit, whatever the chunk size. Fading evolves continuously
across CSI-RS periods and the CSI-RS measurement and the PDSCH see the same realisation. The
channel is held constant within a slot (block fading per slot; at 30 kHz and 120 km/h the phase
drift over a 0.5 ms slot is ~0.2 cycles at the maximum Doppler, which we accept).

Memory: a chunk is as many samples (a multiple of 64) as take ~CHUNK_BYTES of Sionna's generation
tensors (``memory_estimate.GENERATION_BYTES_PER_SAMPLE_PAIR``: ~10 kB per sample and antenna pair for
TDL, ~8 kB for CDL/UMi/UMa, whose tensors are clusters x 20 rays x antenna pairs x samples), and
each UE keeps the path gains of its last CACHED_CHUNKS chunks, whatever the run's length.

Ray-traced channels (``simulator.channel.ray_traced``) keep only their anchors' paths, one delay set
per segment between anchors, and form a slot's path gains when asked for; every product below runs
per segment, with that segment's Fourier kernel (a few cached).
"""
from __future__ import annotations

import numpy as np

from simulator.channel.ray_traced import ray_traced_paths
from simulator.channel.system_level import SystemLevelPaths
from simulator.schema import CarrierConfig, ChannelConfig, GnbConfig

CHUNK_SLOTS = 512
# TDL, CDL, UMi, UMa: samples generated per chunk (a multiple of 64, so each value's SIMD lane is the
# whole run's: continuous_tdl, continuous_38901), about 64 MB of Sionna's generation tensors
CHUNK_BYTES = 64e6
CACHED_CHUNKS = 3                # chunks kept: the event loop reads the current slots and a CSI-RS behind them


def chunk_samples(model: str, antenna_pairs: int) -> int:
    """Samples per chunk of a ``model`` channel of ``antenna_pairs`` (a multiple of 64, at least 64)."""
    from simulator.memory_estimate import GENERATION_BYTES_PER_SAMPLE_PAIR

    per_sample = GENERATION_BYTES_PER_SAMPLE_PAIR[model] * antenna_pairs
    return max(64, int(CHUNK_BYTES / per_sample) // 64 * 64)
KERNEL_CACHE_SEGMENTS = 8     # ray-traced segments whose kernels are kept (the event loop reads a few at a time)


def stream_gain(h: np.ndarray) -> np.ndarray:
    """h [..., num_ue_ant, sc] complex -> [..., sc] float64: sum over UE antennas of |h|^2, the
    MRC/LMMSE gain of one stream (what ``per_re_sinr`` scales by the SNR)."""
    return (h.real.astype(np.float64) ** 2 + h.imag.astype(np.float64) ** 2).sum(axis=-2)


def _ue_array(num_ue_ant: int, fc_hz: float):
    """The UE's Sionna array: one row of vertically polarised omni elements (half-wavelength spacing)."""
    from sionna.phy.channel.tr38901 import AntennaArray

    return AntennaArray(num_rows=1, num_cols=num_ue_ant, polarization="single", polarization_type="V",
                        antenna_pattern="omni", carrier_frequency=fc_hz)


def _gnb_array(gnb: GnbConfig, fc_hz: float):
    """The gNB's Sionna array: rows x cols of 38.901 elements, V or cross polarised (two ports each)."""
    from sionna.phy.channel.tr38901 import AntennaArray

    dual = gnb.polarization == "dual"
    spacing = gnb.element_spacing_wavelengths
    return AntennaArray(num_rows=gnb.antenna_rows, num_cols=gnb.antenna_cols, polarization="dual" if dual else "single",
                        polarization_type="cross" if dual else "V", antenna_pattern="38.901", carrier_frequency=fc_hz,
                        vertical_spacing=spacing, horizontal_spacing=spacing)


def _set_sionna_seed(seed: int) -> None:
    import sionna.phy

    sionna.phy.config.seed = int(seed)


class FadingChannel:
    """Per-UE MIMO channel frequency response per slot, from the gNB's array to the UE's antennas.

    cfr(slots [n] int) -> [n, num_ue_ant, num_gnb_ant, num_subcarriers] complex64, no per-realisation
    normalisation (small-scale fading is kept). TDL: average power 1 per antenna pair (the profile's
    path powers sum to one), i.i.d. across gNB antennas. CDL, UMi, UMa, ray traced: the gNB's uniform
    planar array (``gnb``: rows x cols, single or cross polarised, 38.901 element pattern) in Sionna's
    antenna order. CDL is not normalised: Sionna's path gains carry the 38.901 element's gain towards
    the rays (up to 8 dBi), so its mean power per antenna pair is above 1 (measured over 20 drops at
    52 PRB: CDL-C 2.8 with one gNB antenna, 3.0 with a 4x8 array; CDL-A 4.2 / 3.8), and a CDL link
    sees about 5-6 dB more than ``snr_db``; UMi/UMa divide it out (below).

    UMi/UMa (``simulator.channel.system_level``): Sionna's system-level model with pathloss and shadow
    fading off (the SNR comes from ``snr:``), the UE outdoor at ``start_position_m`` [3] moving at
    ``velocity_mps`` [3] (its norm is ``speed_mps``), the gNB at ``gnb.position_m``, orientations zero,
    LoS as ``cfg.los`` (None: drawn with 38.901's probability); Sionna's path gains carry the element
    gains towards the rays, so they are divided by the realisation's expected power (averaged over the
    ray phases, not over its samples). Limits: the LSPs, clusters and angles are drawn once at t = 0
    and do not drift along the trajectory (Sionna's 38.901 models have no spatial consistency across
    set_topology calls), so a long drive keeps its t = 0 scattering geometry and moves along the t = 0
    velocity (waypoints: the first segment's direction; a UE that stops sees a frozen channel). Paths:
    UMi 16 LoS / 23 NLoS, UMa up to 24; memory as in the module docstring (chunks).

    Ray traced (``simulator.channel.ray_traced``): the scene ``cfg.ray_traced`` traced along the UE's
    ``mobility`` (``Mobility``) every ``anchor_spacing_m``, the path phases turning at their Doppler in
    between, divided by one constant per UE (unit mean path power over the drive, the scene's
    large-scale variation kept); ``seed`` seeds the path solver; a drive position without a path is
    an error on ``ue_field`` (``ues.N.mobility``).
    """

    def __init__(self, cfg: ChannelConfig, carrier: CarrierConfig, num_ue_ant: int, speed_mps: float,
                 sample_of_slot: np.ndarray, seed: int, gnb: GnbConfig | None = None, *,
                 start_position_m: np.ndarray | None = None, velocity_mps: np.ndarray | None = None,
                 mobility=None, ue_field: str = "ue"):
        import tensorflow as tf
        from sionna.phy.channel import subcarrier_frequencies
        from sionna.phy.channel.tr38901 import CDL

        from simulator.channel.continuous_tdl import ContinuousTDL

        self.sample_of_slot = np.asarray(sample_of_slot, dtype=np.int64)    # [num_slots]
        num_samples = int(self.sample_of_slot.max()) + 1
        fc_hz = carrier.carrier_frequency_ghz * 1e9
        slot_s = carrier.slot_us * 1e-6
        gnb = gnb or GnbConfig()
        self.num_gnb_ant = gnb.num_antennas
        _set_sionna_seed(seed)
        self._rt = None                # ray-traced paths; otherwise path gains per sample [time, rx_ant, tx_ant,
        self._path_gains = None        # paths] from path_gains(start, stop), a chunk at a time (_chunk_gains)
        self._num_samples = num_samples
        self._chunk = chunk_samples(cfg.model, num_ue_ant * self.num_gnb_ant) if cfg.model != "ray_traced" else 0
        self._chunks: dict[int, np.ndarray] = {}
        first = min(self._chunk, num_samples)
        self._segment_of_sample = np.zeros(num_samples, np.int64)          # one delay set unless ray traced
        if cfg.model == "ray_traced":
            if mobility is None:
                raise ValueError("channel model ray_traced needs the UE's mobility")
            self._rt = ray_traced_paths(cfg.ray_traced, carrier, gnb, num_ue_ant, mobility, num_samples, seed,
                                        ue_field)
            self._segment_of_sample, self._tau_s = self._rt.segment_of_sample, self._rt.tau_s
        elif cfg.model in ("umi", "uma"):
            if start_position_m is None or velocity_mps is None:
                raise ValueError(f"channel model {cfg.model} needs the UE's start_position_m and velocity_mps")
            if not np.isclose(np.linalg.norm(velocity_mps), speed_mps, rtol=1e-6, atol=1e-9):
                raise ValueError(f"velocity_mps {list(velocity_mps)} does not have the speed {speed_mps} m/s")
            paths = SystemLevelPaths(cfg.model, cfg.los, _ue_array(num_ue_ant, fc_hz), _gnb_array(gnb, fc_hz), fc_hz,
                                     gnb.position_m, start_position_m, velocity_mps, 1.0 / slot_s, first)
            self._path_gains, self._chunks[0] = paths.path_gains, paths.first
            self._tau_s = paths.tau_s[None]                                              # [1 segment, paths]
        elif cfg.model == "tdl":        # drawn now, its samples generated a chunk at a time (continuous_tdl)
            from simulator.channel.continuous_tdl import path_gains as tdl_path_gains

            tdl = ContinuousTDL(cfg.profile, cfg.delay_spread_s, fc_hz, num_sinusoids=cfg.num_sinusoids,
                                min_speed=speed_mps, max_speed=speed_mps, num_rx_ant=num_ue_ant,
                                num_tx_ant=self.num_gnb_ant)
            tdl.draw()
            self._path_gains = lambda start, stop: tdl_path_gains(tdl, start, stop, 1.0 / slot_s)
            _, tau = tdl.evaluate(0, 1, 1.0 / slot_s)
            self._tau_s = tf.reshape(tau, [1, -1]).numpy().astype(np.float64)          # [1 segment, paths]
        else:                           # CDL: drawn by the first call, the rest replayed (continuous_38901)
            from simulator.channel.continuous_38901 import ContinuousModel

            cdl = ContinuousModel(CDL(cfg.profile, cfg.delay_spread_s, fc_hz, _ue_array(num_ue_ant, fc_hz),
                                      _gnb_array(gnb, fc_hz), "downlink", min_speed=speed_mps, max_speed=speed_mps))

            def cdl_gains(start: int, stop: int) -> np.ndarray:
                a = cdl(start, stop - start, 1.0 / slot_s)[0]
                # a: [1, 1, rx_ant, 1, tx_ant, paths, time] -> [time, rx_ant, tx_ant, paths]
                return np.ascontiguousarray(tf.transpose(a[0, 0, :, 0], [3, 0, 1, 2]).numpy())

            a, tau = cdl(0, first, 1.0 / slot_s)
            self._chunks[0] = np.ascontiguousarray(tf.transpose(a[0, 0, :, 0], [3, 0, 1, 2]).numpy())
            self._path_gains = cdl_gains
            self._tau_s = tf.reshape(tau, [1, -1]).numpy().astype(np.float64)          # [1 segment, paths]
        self._freqs_hz = subcarrier_frequencies(carrier.num_subcarriers,
                                                carrier.subcarrier_spacing_khz * 1e3).numpy().astype(np.float64)
        self.num_ue_ant = num_ue_ant
        self._cache_start = -1
        self._cache = None
        self._gain = None
        self._kernels: dict[tuple, np.ndarray] = {}   # (segment,) / (segment, subband size) -> kernel, Gram
        self._slot_gains = (-1, None)                 # (sample, its ray-traced path gains)

    def _gains(self, samples: np.ndarray) -> np.ndarray:
        """[n, rx_ant, tx_ant, paths] path gains of samples [n] (complex64 drawn, complex128 ray traced)."""
        if self._rt is not None:
            return self._rt.gains(samples)
        return self._chunk_gains(np.asarray(samples))

    def path_gains_of_run(self) -> np.ndarray:
        """Every sample's path gains, [num_samples, rx_ant, tx_ant, paths] (a whole run at once: for checks
        on short channels; the event loop reads chunks)."""
        return self._gains(np.arange(self._num_samples))

    def _chunk_gains(self, samples: np.ndarray) -> np.ndarray:
        """Path gains from the chunks that hold ``samples`` (generated on first use, the last
        CACHED_CHUNKS kept): chunk c is samples c * chunk .. (c + 1) * chunk - 1, the last one ending
        at the run's end, so every value equals the whole run's (``continuous_tdl``, ``continuous_38901``)."""
        chunks = samples // self._chunk
        first = int(chunks.flat[0]) if chunks.size else 0
        if chunks.size and (chunks == first).all():
            return self._chunk_of(first)[samples - first * self._chunk]
        out = None
        for c in np.unique(chunks):
            rows = chunks == c
            g = self._chunk_of(int(c))
            if out is None:
                out = np.empty((*samples.shape, *g.shape[1:]), g.dtype)
            out[rows] = g[samples[rows] - int(c) * self._chunk]
        return out

    def _chunk_of(self, c: int) -> np.ndarray:
        g = self._chunks.get(c)
        if g is None:
            if len(self._chunks) >= CACHED_CHUNKS:
                del self._chunks[next(iter(self._chunks))]
            start = c * self._chunk
            g = self._chunks[c] = self._path_gains(start, min(start + self._chunk, self._num_samples))
        return g

    def _cached(self, key: tuple, make, segment: int) -> np.ndarray:
        """``make(segment)``, kept for the last few segments asked for."""
        k = self._kernels.get(key)
        if k is None:
            if len(self._kernels) >= 5 * KERNEL_CACHE_SEGMENTS:   # kernel, Gram, subband kernel (2 precisions), factor
                del self._kernels[next(iter(self._kernels))]
            k = self._kernels[key] = make(segment)
        return k

    def _kernel(self, segment: int) -> np.ndarray:
        """Fourier kernel of cir_to_ofdm_channel: H(f) = sum_l a_l exp(-j 2 pi f tau_l)   [paths, sc] complex128."""
        return self._cached((segment,), lambda s: np.exp(-2j * np.pi * self._tau_s[s][:, None]
                                                         * self._freqs_hz[None, :]), segment)

    def _gram(self, segment: int) -> np.ndarray:
        """K K^H / num_sc [paths, paths] of the segment's kernel K."""
        return self._cached((segment, "gram"), self._make_gram, segment)

    def _make_gram(self, segment: int) -> np.ndarray:
        k = self._kernel(segment)
        return k @ k.conj().T / self._freqs_hz.size

    def _compute(self, samples: np.ndarray, tx: slice = slice(None)) -> np.ndarray:
        """[n, rx_ant, tx_ant, sc] complex64 for samples [n] (gNB antennas ``tx``): per segment one 2-D product
        [n * rx * tx, paths] @ [paths, sc] (a stacked product makes n small BLAS calls, each a thread
        wake-up under load). It sums in complex128 and rounds once to complex64, so a slot's value does not
        depend on its row in the product, on the BLAS or on its thread count (a complex64 GEMM rounds its
        edge rows differently)."""
        seg = self._segment_of_sample[samples]
        segments = np.unique(seg)
        out = np.empty((len(samples), self.num_ue_ant, len(range(self.num_gnb_ant)[tx]), self._freqs_hz.size),
                       np.complex64)
        for s in segments:
            rows = np.flatnonzero(seg == s) if len(segments) > 1 else slice(None)
            a = self._gains(samples[rows])[:, :, tx]                      # [n, rx_ant, tx_ant, paths]
            n, rx_ant, tx_ant, num_paths = a.shape
            h = a.reshape(n * rx_ant * tx_ant, num_paths).astype(np.complex128) @ self._kernel(s)
            out[rows] = h.astype(np.complex64).reshape(n, rx_ant, tx_ant, -1)
        return out

    def cfr(self, slots) -> np.ndarray:
        """[n, num_ue_ant, num_gnb_ant, num_subcarriers] complex64 of slots [n]."""
        return self._compute(self.sample_of_slot[np.asarray(slots)])

    def cfr_slot(self, slot: int) -> np.ndarray:
        """[num_ue_ant, num_gnb_ant, num_subcarriers] complex64 of one slot (what the UE measures at CSI-RS)."""
        return self._compute(self.sample_of_slot[slot:slot + 1])[0]

    def cfr_slot_sc(self, slot: int, sc: np.ndarray) -> np.ndarray:
        """[num_ue_ant, num_gnb_ant, len(sc)] complex64 of one slot on the subcarriers ``sc`` only (a PRB
        group's: the kernel's columns, so the cost is that of the group, not of the carrier)."""
        sample = self.sample_of_slot[slot:slot + 1]
        a = self._gains(sample)[0]                                              # [rx_ant, tx_ant, paths]
        k = self._kernel(int(self._segment_of_sample[sample[0]]))[:, sc]        # [paths, L]
        rx_ant, tx_ant, num_paths = a.shape
        h = a.reshape(rx_ant * tx_ant, num_paths).astype(np.complex128) @ k
        return h.astype(np.complex64).reshape(rx_ant, tx_ant, -1)

    def _load_chunk(self, slot: int) -> int:
        start = (slot // CHUNK_SLOTS) * CHUNK_SLOTS
        if start != self._cache_start:
            stop = min(start + CHUNK_SLOTS, len(self.sample_of_slot))
            h0 = self._compute(self.sample_of_slot[start:stop], slice(0, 1))[:, :, 0]   # [n, rx_ant, sc]
            self._cache = h0
            self._gain = stream_gain(h0)                                                  # [n, sc]
            self._cache_start = start
        return start

    def port0_slot(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """The channel from gNB antenna 0 alone, [num_ue_ant, num_subcarriers] complex64, and its gain
        [num_subcarriers] float64 (sum over UE antennas of |h|^2), from a chunk cache (the hot path with
        one gNB antenna)."""
        start = self._load_chunk(slot)
        return self._cache[slot - start], self._gain[slot - start]

    def _slot_paths(self, slot: int) -> tuple[np.ndarray, int]:
        """The slot's path gains [rx, tx, paths] complex128 and its segment."""
        sample = self.sample_of_slot[slot]
        if self._rt is None:
            return self._gains(sample[None])[0].astype(np.complex128), 0
        if self._slot_gains[0] != sample:            # ray traced: formed once for the slot's precoding and power
            self._slot_gains = (sample, self._rt.gains(sample[None])[0])
        return self._slot_gains[1], int(self._segment_of_sample[sample])

    def precoded_slot(self, slot: int, w_sb: np.ndarray, subband_sc: int) -> np.ndarray:
        """One stream precoded per subband: w_sb [num_subbands, num_gnb_ant] (subbands of ``subband_sc``
        subcarriers, the last one shorter if it must be) -> H w [num_ue_ant, num_subcarriers] complex64
        (``precoded_groups`` on every subband)."""
        h = self.precoded_groups(slot, w_sb[:, :, None], None, subband_sc)[:, :, 0]               # [S, rx, L]
        return h.transpose(1, 0, 2).reshape(h.shape[1], -1)[:, :self._freqs_hz.size]

    def precoded_groups(self, slot: int, w: np.ndarray, subbands: np.ndarray | None, subband_sc: int) -> np.ndarray:
        """Streams precoded on some subbands: w [n, num_gnb_ant, M] the precoder of subbands ``subbands`` [n]
        (None: all, n of them; subbands of ``subband_sc`` subcarriers from the first) -> H W [n, num_ue_ant, M, subband_sc] complex64;
        the last subband's subcarriers past the carrier (when it is shorter) are zero.

        Formed from the path gains without the full MIMO response: H W = sum_p K[p, sc] (a[:, :, p] W),
        the gNB antennas folded into the paths first, so the cost does not grow with the array beyond
        [n * M, tx] @ [tx, paths] per UE antenna (a matmul: an einsum of the same product costs three
        times more at 32 antennas), then one [rx * M, paths] @ [paths, subband_sc] product per subband."""
        a, seg = self._slot_paths(slot)                                           # [rx, tx, p]
        n, _, m = w.shape
        rx, _, num_paths = a.shape
        b = np.swapaxes(w, 1, 2).reshape(n * m, -1) @ a                           # [rx, n * M, p]
        b = b.reshape(rx, n, m, num_paths).transpose(1, 0, 2, 3).reshape(n, rx * m, num_paths)
        k = self._subband_kernel(subband_sc, seg, np.complex64)                   # [S, p, L]
        if subbands is not None:
            k = k[subbands]
        return (b.astype(np.complex64) @ k).reshape(n, rx, m, subband_sc)

    def _subband_kernel(self, subband_sc: int, segment: int, dtype=np.complex128) -> np.ndarray:
        """The segment's kernel by subband, [subbands, paths, subband_sc] (the last one zero-padded), complex128
        or, for the per-slot precoded products whose results are single precision anyway, complex64."""
        def make(s: int) -> np.ndarray:
            kernel = self._kernel(s)
            num_paths, num_sc = kernel.shape
            num_sb = -(-num_sc // subband_sc)
            pad = np.zeros((num_paths, num_sb * subband_sc), np.complex128)
            pad[:, :num_sc] = kernel
            return np.ascontiguousarray(pad.reshape(num_paths, num_sb, subband_sc).transpose(1, 0, 2))

        if dtype == np.complex128:
            return self._cached((segment, subband_sc), make, segment)
        return self._cached((segment, subband_sc, dtype), lambda s: self._subband_kernel(subband_sc, s).astype(dtype),
                            segment)

    def subband_rows(self, slot: int, subband_sc: int) -> np.ndarray:
        """Rows whose Gram matrix is each subband's covariance: [S, num_ue_ant * r, num_gnb_ant] complex128
        with rows_s^H rows_s = sum over the subband's subcarriers of H^H H (subbands of ``subband_sc``
        subcarriers from the first, the last one shorter if it must be), without forming H.

        With A_u [paths, gnb] UE antenna u's path gains and K_s [paths, L] the subband's Fourier kernel,
        sum_sc H^H H = sum_u A_u^H M_s A_u, M_s = conj(K_s) K_s^T; M_s = C_s^H C_s (C_s from its
        eigendecomposition, cached per segment and subband size) gives rows C_s A_u. Over a subband
        the kernel's rows are nearly dependent (paths closer in delay than 1 / subband bandwidth), so
        C_s keeps only the eigenvalues above 1e-13 of the largest: r is 4-11 for UMi at 4 PRB
        subbands of 30 kHz, and ``eigen_precoder_of_rows`` solves an r x r eigenproblem instead of one
        over the gNB antennas."""
        a, seg = self._slot_paths(slot)                                            # [rx, tx, p]
        c = self._cached((seg, subband_sc, "cov"), lambda s: _covariance_factor(self._subband_kernel(subband_sc, s)),
                         seg)                                                      # [S, r, p]
        rows = c[:, None] @ a.transpose(0, 2, 1)[None]                             # [S, rx, r, tx]
        return rows.reshape(len(c), -1, a.shape[1])

    def gain_over_antenna_db(self, slot: int, mean_gain: float) -> float:
        """A precoded stream's mean gain ``mean_gain`` (sum over UE antennas of |H w|^2, averaged over its
        subcarriers) over that of one gNB antenna in the slot, dB (0 where either is zero)."""
        per_antenna = self.mean_power_per_gnb_antenna(slot)
        return float(10.0 * np.log10(mean_gain / per_antenna)) if per_antenna > 0 and mean_gain > 0 else 0.0

    def mean_power_per_gnb_antenna(self, slot: int) -> float:
        """Mean over gNB antennas and subcarriers of sum_rx |H|^2: the real part of sum over antenna pairs
        of a (K K^H / num_sc) a^H (a: the pair's path gains as a row), without forming H: one product
        [pairs, paths] @ [paths, paths] and one dot product (BLAS; an einsum over the three operands
        costs ten times more at 32 antennas)."""
        a, seg = self._slot_paths(slot)
        a = a.reshape(-1, a.shape[-1])
        return float(np.vdot(a, a @ self._gram(seg)).real) / self.num_gnb_ant


def _covariance_factor(kernel_sb: np.ndarray, rel_tol: float = 1e-13) -> np.ndarray:
    """kernel_sb [S, paths, L] the subbands' Fourier kernels -> C [S, r, paths] complex128 with C_s^H C_s =
    M_s = conj(K_s) K_s^T, from M_s's eigenvalues above ``rel_tol`` of its largest (r the most any
    subband keeps; a subband with fewer gets zero rows, which change no Gram matrix)."""
    m = np.conj(kernel_sb) @ np.swapaxes(kernel_sb, 1, 2)                            # [S, p, p]
    lam, v = np.linalg.eigh(m)
    keep = lam > rel_tol * lam[:, -1:]
    r = max(int(keep.sum(axis=1).max()), 1)
    lam, v, keep = lam[:, -r:], v[:, :, -r:], keep[:, -r:]
    c = np.sqrt(np.where(keep, lam, 0.0))[:, :, None] * np.conj(np.swapaxes(v, 1, 2))   # D^1/2 V^H
    return np.ascontiguousarray(c)
