"""38.901 TDL/CDL fading from Sionna, continuous in time over the whole run.

Sionna's TDL/CDL draw new sinusoid phases on every call, so one call per UE generates the
whole run (``num_time_steps`` samples, one per slot of travel at the UE's speed) and the
channel of any slot is read from that span: fading evolves continuously across CSI-RS
periods and the CSI-RS measurement and the PDSCH see the same realisation. The channel is
held constant within a slot (block fading per slot; at 30 kHz and 120 km/h the phase
drift over a 0.5 ms slot is ~0.2 cycles at the maximum Doppler, which we accept).

Memory: the path gains take num_slots * num_paths * num_ue_ant * 8 bytes (a 10 min run at
30 kHz with TDL-B and one antenna: 220 MB); the frequency response is computed per chunk.
"""
from __future__ import annotations

import numpy as np

from simulator.schema import CarrierConfig, ChannelConfig

CHUNK_SLOTS = 512


def _set_sionna_seed(seed: int) -> None:
    import sionna.phy

    sionna.phy.config.seed = int(seed)


class FadingChannel:
    """Per-UE channel frequency response per slot.

    cfr(slots [n] int) -> [n, num_ue_ant, num_subcarriers] complex64, average power 1 per
    antenna (path powers of the 38.901 profile sum to one; no per-realisation normalisation,
    so small-scale fading is kept).
    """

    def __init__(self, cfg: ChannelConfig, carrier: CarrierConfig, num_ue_ant: int, speed_mps: float,
                 sample_of_slot: np.ndarray, seed: int):
        import tensorflow as tf
        from sionna.phy.channel import subcarrier_frequencies
        from sionna.phy.channel.tr38901 import CDL, TDL, AntennaArray

        self.sample_of_slot = np.asarray(sample_of_slot, dtype=np.int64)    # [num_slots]
        num_samples = int(self.sample_of_slot.max()) + 1
        fc_hz = carrier.carrier_frequency_ghz * 1e9
        slot_s = carrier.slot_us * 1e-6
        _set_sionna_seed(seed)
        if cfg.model == "tdl":
            model = TDL(cfg.profile, cfg.delay_spread_s, fc_hz, num_sinusoids=cfg.num_sinusoids,
                        min_speed=speed_mps, max_speed=speed_mps, num_rx_ant=num_ue_ant, num_tx_ant=1)
        else:
            ut_array = AntennaArray(num_rows=1, num_cols=num_ue_ant, polarization="single",
                                    polarization_type="V", antenna_pattern="omni", carrier_frequency=fc_hz)
            bs_array = AntennaArray(num_rows=1, num_cols=1, polarization="single",
                                    polarization_type="V", antenna_pattern="38.901", carrier_frequency=fc_hz)
            model = CDL(cfg.profile, cfg.delay_spread_s, fc_hz, ut_array, bs_array, "downlink",
                        min_speed=speed_mps, max_speed=speed_mps)
        a, tau = model(1, num_samples, 1.0 / slot_s)
        # a: [1, 1, rx_ant, 1, tx_ant=1, paths, time] -> [time, rx_ant, paths]
        self._a = np.ascontiguousarray(tf.transpose(a[0, 0, :, 0, 0], [2, 0, 1]).numpy())
        tau_s = tf.reshape(tau, [-1]).numpy().astype(np.float64)                 # [paths]
        freqs_hz = subcarrier_frequencies(carrier.num_subcarriers,
                                          carrier.subcarrier_spacing_khz * 1e3).numpy().astype(np.float64)
        # Fourier kernel of cir_to_ofdm_channel: H(f) = sum_l a_l exp(-j 2 pi f tau_l)   [paths, sc] complex128
        self._kernel = np.exp(-2j * np.pi * tau_s[:, None] * freqs_hz[None, :])
        self.num_ue_ant = num_ue_ant
        self._cache_start = -1
        self._cache = None
        self._gain = None

    def _compute(self, samples: np.ndarray) -> np.ndarray:
        """[n, rx_ant, sc] complex64 for samples [n]: one 2-D product [n * rx_ant, paths] @ [paths, sc]
        (a stacked [n, rx_ant, paths] @ [paths, sc] makes n small BLAS calls, each a thread wake-up under
        load). It sums in complex128 and rounds once to complex64, so a slot's value does not depend on
        its row in the product, on the BLAS or on its thread count (a complex64 GEMM rounds its edge rows
        differently)."""
        a = self._a[samples]                                          # [n, rx_ant, paths]
        n, rx_ant, num_paths = a.shape
        h = a.reshape(n * rx_ant, num_paths).astype(np.complex128) @ self._kernel
        return h.astype(np.complex64).reshape(n, rx_ant, -1)

    def cfr(self, slots) -> np.ndarray:
        return self._compute(self.sample_of_slot[np.asarray(slots)])

    def _load_chunk(self, slot: int) -> int:
        start = (slot // CHUNK_SLOTS) * CHUNK_SLOTS
        if start != self._cache_start:
            stop = min(start + CHUNK_SLOTS, len(self.sample_of_slot))
            h = self._compute(self.sample_of_slot[start:stop])
            self._cache = h
            # sum over receive antennas of |h|^2: the MRC/LMMSE gain of one stream [n, sc]
            self._gain = (h.real.astype(np.float64) ** 2 + h.imag.astype(np.float64) ** 2).sum(axis=1)
            self._cache_start = start
        return start

    def cfr_slot(self, slot: int) -> np.ndarray:
        """[num_ue_ant, num_subcarriers] complex64 for one slot, from a chunk cache (the hot path)."""
        start = self._load_chunk(slot)
        return self._cache[slot - start]

    def gain_slot(self, slot: int) -> np.ndarray:
        """[num_subcarriers] float64: sum over UE antennas of |h|^2 for one slot."""
        start = self._load_chunk(slot)
        return self._gain[slot - start]
