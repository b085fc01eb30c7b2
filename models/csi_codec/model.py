"""The conv CSI compressor of the paper's Fig. 1 with a learned entropy model, and its losses.

Encoder (UE): ``num_pools`` blocks of [conv k x k, ``filters`` kernels, ReLU, 2x2 max-pool],
then a conv with ``latent_channels`` (2) kernels and a linear activation. Decoder (gNB):
``num_pools`` blocks of [conv k x k, ``filters`` kernels, ReLU, 2x nearest-neighbour
upsampling], then a conv with 2 kernels (real, imaginary) and a linear activation. All kernels
5 x 5, 'same' padding. With 64 kernels this is 109 K encoder and 109 K decoder parameters at
any CSI size, the paper's Table V. A 64 x 64 CSI matrix gives a 16 x 16 x 2 latent (512 values
for 8192 real inputs), and encoder + decoder take 238 M multiply-accumulates per report
(conv 64->64 at 32 x 32 on each side dominates): 476 M FLOPs, the 475 M of Table V, which
places the pools after the first two encoder convs and the upsamplings after the first two
decoder convs as here.

Input: the spatial-frequency CSI matrix H [antennas, subcarriers] as real/imag channels,
x [batch, num_ant, num_sc, 2] float32. The latent y [batch, num_ant / 2^P, num_sc / 2^P, 2]
gets U(-1/2, 1/2) noise in training and is rounded to integers at inference (unit bins); the
DeepFactorized density (``entropy.py``) gives its likelihood.

Losses, all per CSI dimension (divided by num_ant * num_sc, as the paper normalises rates):
  rate R = sum -log2 p(y~) / (Nt Nc), distortion D = ||H - H^||_F^2 / (Nt Nc)
  rd (eq. 9 / (Nt Nc)):          R + lambda D
  full_model (eq. 21 / (Nt Nc)): R + lambda D + beta * update_bits / (Nt Nc * reports_per_update)
NMSE (eq. 11): E[||H - H^||^2 / ||H||^2], reported in dB. ``reports_per_update`` spreads the
one-off update over the CSI reports it serves, so every term is bits per CSI dimension and
rates add up as the paper's total rate does.

Weights for the decoder side (what the gNB holds and what a full-model update changes): the
decoder convs and the entropy model's parameters, in ``decoder_side_variables`` order.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import tensorflow as tf

from models.checkpoint import load_typed_checkpoint, save_typed_checkpoint
from models.csi_codec.layout import conv_channels
from models.config import config_from_dict
from models.csi_codec.entropy import DeepFactorized, ProbabilityTables
from models.registry import register_model

# CSI sizes (antennas, subcarriers): 32x32 is the small size for tests, 64x64 the paper's,
# 256x256 for a GPU
CSI_PRESETS = {"32x32": (32, 32), "64x64": (64, 64), "256x256": (256, 256)}


@dataclass(frozen=True)
class ConvCsiConfig:
    num_ant: int = 32
    num_sc: int = 32
    filters: int = 64
    kernel_size: int = 5
    num_pools: int = 2
    latent_channels: int = 2
    entropy_filters: tuple[int, ...] = (3, 3, 3)
    entropy_init_scale: float = 10.0
    tail_mass: float = 1e-9             # density mass left to the escape symbol of each table
    table_precision: int = 24           # bits of the integer probability tables (constriction: <= 24)

    def __post_init__(self):
        for name in ("num_ant", "num_sc", "filters", "kernel_size", "latent_channels"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if int(self.num_pools) != self.num_pools or self.num_pools < 1:
            raise ValueError(f"num_pools must be a positive integer, got {self.num_pools!r}")
        f = 2 ** self.num_pools
        if self.num_ant % f or self.num_sc % f:
            raise ValueError(f"num_ant {self.num_ant} and num_sc {self.num_sc} must be multiples of "
                             f"2**num_pools = {f}")
        if not 0 < self.tail_mass < 1e-2:
            raise ValueError(f"tail_mass must be in (0, 0.01), got {self.tail_mass}")
        if not 8 <= self.table_precision <= 24:
            raise ValueError(f"table_precision must be 8..24 bits, got {self.table_precision}")
        object.__setattr__(self, "entropy_filters", tuple(int(v) for v in self.entropy_filters))

    @classmethod
    def from_dict(cls, d: dict) -> "ConvCsiConfig":
        return config_from_dict(cls, d, "conv_csi")

    @classmethod
    def preset(cls, name: str, **overrides) -> "ConvCsiConfig":
        if name not in CSI_PRESETS:
            raise ValueError(f"unknown CSI preset {name!r}; valid: {', '.join(CSI_PRESETS)}")
        ant, sc = CSI_PRESETS[name]
        return cls.from_dict({"num_ant": ant, "num_sc": sc, **overrides})

    @property
    def latent_shape(self) -> tuple[int, int]:
        f = 2 ** self.num_pools
        return self.num_ant // f, self.num_sc // f

    @property
    def csi_dims(self) -> int:
        """Nt * Nc, the normaliser of rates and distortions."""
        return self.num_ant * self.num_sc


def _glorot(rng: np.random.Generator, k: int, cin: int, cout: int) -> np.ndarray:
    limit = math.sqrt(6.0 / (k * k * (cin + cout)))
    return rng.uniform(-limit, limit, (k, k, cin, cout)).astype(np.float32)


def _conv(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    return tf.nn.conv2d(x, w, strides=1, padding="SAME") + b


def _upsample2(x: tf.Tensor) -> tf.Tensor:
    """Nearest-neighbour 2x upsampling of [batch, h, w, c]."""
    return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)


def nmse_db(x: tf.Tensor, x_hat: tf.Tensor) -> tf.Tensor:
    """Eq. 11 in dB: 10 log10 E[||H - H^||^2 / ||H||^2]; x, x_hat [batch, ant, sc, 2]."""
    x, x_hat = tf.convert_to_tensor(x, tf.float32), tf.convert_to_tensor(x_hat, tf.float32)
    err = tf.reduce_sum(tf.square(x - x_hat), axis=[1, 2, 3])
    ref = tf.reduce_sum(tf.square(x), axis=[1, 2, 3])
    return 10.0 * tf.math.log(tf.reduce_mean(err / ref)) / math.log(10.0)


@register_model("conv_csi")
class ConvCsiCodec(tf.Module):
    """Conv CSI autoencoder + DeepFactorized entropy model (paper, Fig. 1).

    encode:      x [batch, ant, sc, 2] float32 -> y [batch, ant/2^P, sc/2^P, latent_channels] float32
    decode:      y_hat [batch, h, w, latent_channels] -> x_hat [batch, ant, sc, 2]
    forward:     x -> (x_hat, bits [batch]) with noisy (training) or rounded (inference) latents
    compress:    x -> (symbols [batch, h, w, latent_channels] int32, estimated bits [batch] float32)
    decompress:  symbols -> x_hat
    """

    Config = ConvCsiConfig

    def __init__(self, config: ConvCsiConfig | None = None, seed: int = 0):
        super().__init__(name="conv_csi")
        self.config = config or ConvCsiConfig()
        cfg = self.config
        rng = np.random.default_rng(seed)
        io = conv_channels(cfg.filters, cfg.latent_channels, cfg.num_pools)
        self.encoder_weights = self._make_convs("encoder", io["encoder"], cfg.kernel_size, rng)
        self.decoder_weights = self._make_convs("decoder", io["decoder"], cfg.kernel_size, rng)
        self.entropy = DeepFactorized(cfg.latent_channels, cfg.entropy_filters, cfg.entropy_init_scale, rng=rng)
        self.noise = tf.random.Generator.from_seed(int(rng.integers(2 ** 31)))
        self._compress = tf.function(self._compress_impl, reduce_retracing=True)
        self._decompress = tf.function(self.decode, reduce_retracing=True)

    @staticmethod
    def _make_convs(prefix: str, io: list[tuple[int, int]], k: int, rng: np.random.Generator) -> list[tf.Variable]:
        """[kernel_0, bias_0, kernel_1, bias_1, ...]: kernels [k, k, in, out] (Glorot uniform), biases [out] (0)."""
        out = []
        for i, (cin, cout) in enumerate(io):
            out.append(tf.Variable(_glorot(rng, k, cin, cout), name=f"{prefix}/conv{i}/kernel"))
            out.append(tf.Variable(np.zeros(cout, np.float32), name=f"{prefix}/conv{i}/bias"))
        return out

    # -- weights ------------------------------------------------------------------------------------
    @property
    def encoder_side_variables(self) -> list[tf.Variable]:
        return list(self.encoder_weights)

    @property
    def decoder_side_variables(self) -> list[tf.Variable]:
        """Decoder convs then entropy-model parameters: what the gNB holds and an update changes."""
        return list(self.decoder_weights) + self.entropy.parameters

    def _named(self) -> dict[str, tf.Variable]:
        named = {v.name.split(":")[0]: v for v in self.encoder_weights + self.decoder_weights}
        named.update({f"entropy/{v.name.split(':')[0]}": v for v in self.entropy.parameters})
        if len(named) != len(self.encoder_weights) + len(self.decoder_weights) + len(self.entropy.parameters):
            raise RuntimeError("variable names are not unique")   # would corrupt checkpoints
        return named

    def get_weights(self) -> dict[str, np.ndarray]:
        """All weights by name, float32 arrays (checkpoint layout)."""
        return {k: v.numpy() for k, v in self._named().items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        named = self._named()
        missing, unknown = sorted(set(named) - set(weights)), sorted(set(weights) - set(named))
        if missing or unknown:
            raise ValueError(f"weights do not fit this conv_csi config: missing {missing}, unknown {unknown}")
        for k, v in named.items():
            w = np.asarray(weights[k], np.float32)
            if tuple(w.shape) != tuple(v.shape):
                raise ValueError(f"weight {k}: shape {w.shape} != expected {tuple(v.shape)}")
            v.assign(w)

    def num_parameters(self) -> dict[str, int]:
        count = lambda vs: int(sum(int(np.prod(v.shape)) for v in vs))  # noqa: E731
        return {"encoder": count(self.encoder_weights), "decoder": count(self.decoder_weights),
                "entropy": count(self.entropy.parameters)}

    # -- checkpoints --------------------------------------------------------------------------------
    def save(self, json_path, training: dict | None = None):
        config = {**asdict(self.config), "entropy_filters": list(self.config.entropy_filters)}
        return save_typed_checkpoint(json_path, "conv_csi", config, self.get_weights(), training)

    @classmethod
    def load(cls, checkpoint, seed: int = 0) -> "ConvCsiCodec":
        config, weights = load_typed_checkpoint(checkpoint, "conv_csi")
        codec = cls(ConvCsiConfig.from_dict(config), seed=seed)
        codec.set_weights(weights)
        return codec

    # -- the two ends of the feedback link (models.base.CsiEncoderSide / CsiDecoderSide) --------------
    @staticmethod
    def online(checkpoint, online, rng: np.random.Generator, reports_per_update: float = 1.0):
        """Both ends of one UE's neural CSI feedback with online fine-tuning (``models.csi_codec.online``)."""
        from models.csi_codec.online import OnlineCsiCodec

        return OnlineCsiCodec(checkpoint, online, rng, reports_per_update)

    @staticmethod
    def read_track(path) -> tuple[np.ndarray, np.ndarray, float]:
        """A CSI track dataset: x [n, ant, sc, 2], distance_m [n], spacing_m (``data.load_track``)."""
        from models.csi_codec.data import load_track

        return load_track(path)

    # -- the networks -------------------------------------------------------------------------------
    def _check_input(self, x) -> tf.Tensor:
        x = tf.convert_to_tensor(x, tf.float32)
        cfg = self.config
        if x.shape.rank != 4 or tuple(x.shape[1:]) != (cfg.num_ant, cfg.num_sc, 2):
            raise ValueError(f"CSI input must be [batch, {cfg.num_ant}, {cfg.num_sc}, 2] (real, imag), "
                             f"got {tuple(x.shape)}")
        return x

    def encode(self, x: tf.Tensor, weights: Sequence[tf.Tensor] | None = None) -> tf.Tensor:
        w = self.encoder_weights if weights is None else list(weights)
        h = x
        for i in range(self.config.num_pools):
            h = tf.nn.relu(_conv(h, w[2 * i], w[2 * i + 1]))
            h = tf.nn.max_pool2d(h, 2, 2, "VALID")
        return _conv(h, w[-2], w[-1])

    def decode(self, y_hat: tf.Tensor, weights: Sequence[tf.Tensor] | None = None) -> tf.Tensor:
        w = self.decoder_weights if weights is None else list(weights)
        h = tf.convert_to_tensor(y_hat, tf.float32)
        for i in range(self.config.num_pools):
            h = _upsample2(tf.nn.relu(_conv(h, w[2 * i], w[2 * i + 1])))
        return _conv(h, w[-2], w[-1])

    def split_decoder_side(self, params: Sequence[tf.Tensor]) -> tuple[list, list]:
        """A list ordered like ``decoder_side_variables`` -> (decoder conv weights, entropy params)."""
        n = len(self.decoder_weights)
        params = list(params)
        if len(params) != n + len(self.entropy.parameters):
            raise ValueError(f"expected {n + len(self.entropy.parameters)} decoder-side tensors, got {len(params)}")
        return params[:n], params[n:]

    def forward(self, x, training: bool = True, decoder_side: Sequence[tf.Tensor] | None = None):
        """x [batch, ant, sc, 2] -> (x_hat [batch, ant, sc, 2], bits [batch]).

        training: latent + U(-1/2, 1/2) noise (differentiable rate bound); otherwise rounded.
        decoder_side: replaces the decoder-side weights (e.g. old + quantised update)."""
        x = self._check_input(x)
        dec_w, ent_w = (None, None) if decoder_side is None else self.split_decoder_side(decoder_side)
        y = self.encode(x)
        if training:
            y_tilde = y + self.noise.uniform(tf.shape(y), -0.5, 0.5)
        else:
            y_tilde = tf.math.round(y)
        return self.decode(y_tilde, dec_w), self.entropy.bits(y_tilde, ent_w)

    # -- inference: integer latents and their bit estimate -------------------------------------------
    def _compress_impl(self, x):
        y = tf.math.round(self.encode(x))
        return tf.cast(y, tf.int32), self.entropy.bits(y)

    def compress(self, x) -> tuple[np.ndarray, np.ndarray]:
        """x [batch, ant, sc, 2] -> (symbols [batch, h, w, C] int32, model bits estimate [batch] float32).

        The estimate is -log2 of the (bounded) likelihood: a symbol so far in the tail that its
        likelihood is below 1e-9 counts ~30 bits, while the coder spends its escape code on it."""
        sym, bits = self._compress(self._check_input(x))
        return sym.numpy(), bits.numpy()

    def decompress(self, symbols) -> np.ndarray:
        """symbols [batch, h, w, C] int -> x_hat [batch, ant, sc, 2] float32."""
        return self._decompress(tf.cast(tf.convert_to_tensor(symbols), tf.float32)).numpy()

    def probability_tables(self) -> ProbabilityTables:
        return self.entropy.probability_tables(self.config.tail_mass, self.config.table_precision)


# -- losses ---------------------------------------------------------------------------------------------
def rd_terms(codec: ConvCsiCodec, x, x_hat: tf.Tensor, bits: tf.Tensor) -> dict[str, tf.Tensor]:
    """Per-CSI-dimension rate and distortion and the NMSE of one batch."""
    x = tf.convert_to_tensor(x, tf.float32)
    dims = float(codec.config.csi_dims)
    return {"rate": tf.reduce_mean(bits) / dims,
            "distortion": tf.reduce_mean(tf.reduce_sum(tf.square(x - x_hat), axis=[1, 2, 3])) / dims,
            "nmse_db": nmse_db(x, x_hat)}


def rd_loss(codec: ConvCsiCodec, x, lmbda: float, training: bool = True) -> dict[str, tf.Tensor]:
    """Eq. 9 per CSI dimension: loss = R + lambda D (see the module docstring)."""
    x_hat, bits = codec.forward(x, training=training)
    terms = rd_terms(codec, x, x_hat, bits)
    terms["loss"] = terms["rate"] + lmbda * terms["distortion"]
    return terms


def full_model_loss(codec: ConvCsiCodec, x, old_decoder_side: Sequence, quantizer, prior,
                    lmbda: float, beta: float, reports_per_update: float,
                    training: bool = True) -> dict[str, tf.Tensor]:
    """Eq. 21 per CSI dimension: R + lambda D + beta * update_bits / (Nt Nc * reports_per_update).

    The decoder side runs with old + Q(current - old) (``quantizer.quantize_ste``: the decoder the
    gNB would rebuild), so distortion and rate see the quantised update while gradients reach the
    current weights straight through; ``update_bits`` is eq. 19 under ``prior``."""
    if reports_per_update <= 0:
        raise ValueError(f"reports_per_update must be > 0, got {reports_per_update}")
    current = codec.decoder_side_variables
    if len(old_decoder_side) != len(current):
        raise ValueError(f"old_decoder_side has {len(old_decoder_side)} tensors, expected {len(current)}")
    old = [tf.convert_to_tensor(o, tf.float32) for o in old_decoder_side]
    deltas = [quantizer.quantize_ste(v - o) for v, o in zip(current, old)]
    params = [o + d for o, d in zip(old, deltas)]
    x_hat, bits = codec.forward(x, training=training, decoder_side=params)
    terms = rd_terms(codec, x, x_hat, bits)
    update_bits = prior.bits_tf(tf.concat([tf.reshape(d, [-1]) for d in deltas], axis=0), quantizer)
    terms["update_bits"] = update_bits
    terms["update_rate"] = update_bits / (codec.config.csi_dims * float(reports_per_update))
    terms["loss"] = terms["rate"] + lmbda * terms["distortion"] + beta * terms["update_rate"]
    return terms
