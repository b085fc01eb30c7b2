"""The protocols through which the engine and the PHY reach models: one per model slot.

The simulator imports these and ``models.registry``; models know nothing of SimPy. Shapes and
units are in the names and docstrings.

| slot | protocol | who holds it |
|---|---|---|
| ``bler_predictor`` | :class:`BlerPredictor` | UE |
| ``csi_codec`` | :class:`CsiCodecType` opens :class:`CsiEncoderSide` (UE) and :class:`CsiDecoderSide` (gNB) | both ends of the uplink |
| ``receiver`` | :class:`NeuralReceiver` (UE) and :class:`ReceiverAdapter` (network side) | both ends of the downlink |

Every online update, whatever the model, is one :class:`Update`: the model says what it costs
(modelled compute time, never wall-clock), what travels (bits and bytes, or nothing) and how to
apply it; the simulator's adaptation path (``simulator/processes/adaptation.py``) owns the
timing, carries it on a link, applies it when it arrives and writes its one ``updates`` row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np


# The BLER predictor's input features, in this order (the simulator computes them at every
# CSI-RS occasion; see simulator/bler_features.py).
BLER_FEATURES = (
    "csi_rs_snr_db", "csi_rs_capacity_bps_hz", "delay_spread_ns", "doppler_hz",
    "pdsch_sinr_db_0", "pdsch_sinr_db_1", "pdsch_sinr_db_2", "pdsch_sinr_db_3",
    "rank", "cqi", "num_rbs", "num_dmrs_symbols",
)


def compute_us(flops: float, gflops: float) -> int:
    """Modelled compute time of ``flops`` at ``gflops`` GFLOP/s: whole microseconds, at least 1."""
    return max(1, int(math.ceil(flops / (gflops * 1e9) * 1e6)))


@dataclass(frozen=True)
class Update:
    """One online model update, as the model proposes it (a row of ``updates.parquet`` once applied).

    ``apply()`` makes the update the one in force on the receiving side (the UE for a BLER
    predictor or receiver update, the gNB for a CSI decoder update) and returns the columns that
    can only be measured then (e.g. ``ber_gap_after``); it runs once, when the payload has arrived
    (or, for an update that sends nothing, when the simulator's rule for that model says).
    """
    model: str                       # registered model type, e.g. "ff_bler", "conv_csi", "deeprx"
    trigger: str                     # what fired it, e.g. "error 0.400 >= delta 0.3", "distance", "ber_gap"
    trigger_value: float             # the quantity compared with the trigger's threshold
    compute_us: int                  # modelled from FLOPs at the configured rate; never wall-clock
    apply: Callable[[], dict] = field(repr=False, compare=False)
    update_bits: int = 0             # coded bits that travel on a link (0: nothing travels)
    payload: bytes | None = field(default=None, repr=False)   # the coded update itself
    state_bytes: int = 0             # model state the update read or wrote (weights, moments, activations)
    loss_before: float = math.nan
    loss_after: float = math.nan
    variant: str | None = None       # scheme / adaptation variant (None: the model has one kind)
    update_bits_estimated: float = math.nan   # the prior's -log2 p of the coded update
    update_nonzero: int | None = None         # quantised weight deltas != 0
    update_weights: int | None = None         # weights the update covers
    target: tuple[int, ...] | None = None     # receiver: slots of the target transmissions
    ber_gap_before: float = math.nan          # receiver: mean relative BER gap on the targets, old weights


class BlerPredictor(Protocol):
    """Short-term BLER predictor (UE side; LightTune and its offline baselines).

    predict:  features [batch, len(BLER_FEATURES)] float32, cqi [batch] int -> bler [batch] float32 in [0, 1]
    observe:  features [len(BLER_FEATURES)], cqi int, bler_observed float (NACK share of the period),
              bler_predicted float | None (the prediction made when the period started)
              -> Update | None (None: no update). The weights in force change only when
              ``Update.apply()`` runs; until then ``predict`` uses the old ones.
    load:     checkpoint path | None (untrained), online config, rng -> predictor
    """

    def predict(self, features: np.ndarray, cqi: np.ndarray) -> np.ndarray: ...

    def observe(self, features: np.ndarray, cqi: int, bler_observed: float,
                bler_predicted: float | None = None) -> Update | None: ...

    @classmethod
    def load(cls, checkpoint: str | None, online: Any, rng: np.random.Generator) -> "BlerPredictor": ...


class CsiEncoderSide(Protocol):
    """UE end of a neural CSI feedback link.

    report:     x [n, ant, sc, 2] float32 (real/imag of n measured CSI matrices, e.g. one per UE
                antenna) -> a report whose ``data`` (bytes, one stream) and ``bits`` travel on the
                uplink, whose ``version`` names the decoder side it was encoded for, and whose
                ``x_expected`` [n, ant, sc, 2] is what that decoder side reconstructs (the UE
                holds a copy: the CQI can be computed for the precoder the gNB will derive)
    fine_tune:  x [n, ant, sc, 2] float32 (the UE's recent CSI) -> Update | None (None: frozen).
                A decoder update's ``payload`` travels on the uplink; ``apply`` switches both ends.
    """

    scheme: str

    def report(self, x: np.ndarray) -> Any: ...

    def fine_tune(self, x: np.ndarray) -> Update | None: ...


class CsiCodecType(Protocol):
    """The class registered for a ``csi_codec`` type: how the engine opens both ends and the track.

    online:     checkpoint path, online config, rng, reports_per_update (CSI-RS reports one decoder
                update serves) -> an object that is both the UE's ``CsiEncoderSide`` and the gNB's
                ``CsiDecoderSide`` of one UE's feedback link (they share only bytes and versions)
    read_track: dataset folder -> x [n, ant, sc, 2] float32, distance_m [n] float64, spacing_m float
    """

    @staticmethod
    def online(checkpoint: str, online: Any, rng: np.random.Generator, reports_per_update: float = 1.0) -> Any: ...

    @staticmethod
    def read_track(path: str) -> tuple[np.ndarray, np.ndarray, float]: ...


class CsiDecoderSide(Protocol):
    """gNB end of a neural CSI feedback link.

    decode: a report (bytes + the version it was encoded for) -> x_hat [n, ant, sc, 2] float32, the
            reconstruction by the decoder side of that version
    """

    def decode(self, report: Any) -> np.ndarray: ...


class NeuralReceiver(Protocol):
    """UE-side neural receiver (e.g. DeepRx): resource grid in, LLRs out. The link-level chain traces
    ``llr_grid`` into its compiled call with the weights as arguments, so new weights do not recompile.

    llr_grid:  y [batch, num_rx_ant, num_ofdm_symbols, num_subcarriers] complex64 (received grid, signal
               power 1 per RE), pilots [batch, num_ofdm_symbols, num_subcarriers] complex64 (the DMRS
               pilot grid, zero off the pilot REs), no [batch] float32 (noise variance per RE, linear),
               params (tensors shaped like ``weights()``, in that order)
               -> llr [batch, num_ofdm_symbols, num_subcarriers, max_bits_per_symbol] float32 in nats,
               Sionna's sign convention ln P(b=1) / P(b=0); only the data REs and the first
               bits_per_symbol channels of the MCS are read
    weights:   -> the current weights, list of numpy arrays in ``params`` order
    load:      checkpoint path -> receiver
    ``num_rx_ant``, ``max_bits_per_symbol``: the grid it fits; ``graph_key``: hashable, equal for
    receivers whose ``llr_grid`` traces to the same graph (they share compiled chains).
    """

    num_rx_ant: int
    max_bits_per_symbol: int
    graph_key: Any

    def llr_grid(self, y: Any, pilots: Any, no: Any, params: Sequence[Any]) -> Any: ...

    def weights(self) -> list[np.ndarray]: ...

    @classmethod
    def load(cls, checkpoint: str) -> "NeuralReceiver": ...

    @staticmethod
    def adapter(checkpoint: str, adaptation: Any, num_subcarriers: int) -> "ReceiverAdapter":
        """The network side's fine-tuning of this receiver type."""

    @staticmethod
    def update_coder(update: Any) -> Any:
        """The coder of its weight updates: encode(old, new) -> coded (bits, data, quantized),
        decode(old, data) -> new weights."""


class ReceiverAdapter(Protocol):
    """Network-side fine-tuning of a UE's neural receiver (targeted fine-tuning, seeds/000).

    ``width``: LLR width (bits per symbol) of the target arrays it needs.
    run:    weights [list, the receiver's parameter order] the network knows the UE holds,
            targets (dataset-layout arrays of the target slots: received grid y [n, A, 14, S]
            complex64, pilots, no [n], coded bits), rng -> result with ``weights`` (new, not
            quantised), ``compute_us`` (modelled), ``state_bytes``, ``loss_before``/``loss_after``
    compute_us(num_targets) -> int: that modelled time, known before ``run`` (the event loop runs the
            job in a worker thread meanwhile: ``simulator/processes/adaptation.py``)
    relative_ber_gap(ber [n], ber_genie [n]) -> [n] (ber - ber_genie) / ber_genie (the trigger's quantity);
    select_targets(ber [n], ber_genie [n], num_targets, min_genie_ber) -> indices [<= num_targets] int.
    """

    width: int

    def relative_ber_gap(self, ber: np.ndarray, ber_genie: np.ndarray) -> np.ndarray: ...

    def select_targets(self, ber: np.ndarray, ber_genie: np.ndarray, num_targets: int,
                       min_genie_ber: float) -> np.ndarray: ...

    def compute_us(self, num_targets: int) -> int: ...

    def run(self, weights: Sequence[np.ndarray], targets: dict[str, np.ndarray], rng: np.random.Generator) -> Any: ...
