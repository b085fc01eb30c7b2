"""The paper's "TM" fine-tuning baseline (its ref. [30], CSI-TransNet): a frozen backbone codec
between a small convolutional translation module T (UE side, before the encoder) and a
retranslation module R (gNB side, after the decoder); only T and R learn, with the RD loss.

  UE:  x -> T(x) -> backbone encoder -> round -> symbols (backbone entropy model, unchanged)
  gNB: symbols -> backbone decoder -> R(.) -> x_hat

Each module is a residual stack of 'same'-padded convs, 2 -> c -> ... -> c -> 2 channels with
ReLU between them and a linear last conv: M(x) = x + f(x). The last conv's kernel and bias
start at zero, so T and R are exactly the identity at initialisation (x + 0.0 == x in float32)
and fine-tuning starts from the frozen backbone's symbols and reconstructions bit for bit. The
hidden convs start Glorot-uniform (zero as well would leave every gradient zero).

The rate term still matters: T changes the latent, so the backbone's entropy model prices
T's output; R only sees the decoded CSI, so only distortion drives it. The latent probability
tables are the backbone's, so its ``LatentCoder`` streams apply as they are.

What the gNB needs: R. The paper counts nothing for sending it ("lower bound rate");
``TranslationModules.retranslation_update`` prices it anyway, as the delta from R's initial
weights (which the gNB can rebuild from the config's seed) under an ``UpdateCoder``.

Not implemented: [30]'s sparsity-aligning function. The seed paper says only that it is a
brute-force search applied before the translation network (too slow for 256 x 256 there) and
gives no definition; [30]'s own text is not available here, and it acts on angular-delay-domain
CSI, which this codec does not use (x is antenna x subcarrier). Guessing its form (e.g. a
circular shift of the angular-delay image chosen by search, which the gNB would also have to be
told) would not be [30]'s method, so the TM here is the translation/retranslation networks only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import tensorflow as tf

from models.checkpoint import load_typed_checkpoint, save_typed_checkpoint
from models.config import config_from_dict
from models.csi_codec.entropy import ProbabilityTables
from models.csi_codec.model import ConvCsiCodec, _conv, _glorot, rd_terms
from models.csi_codec.train import LogFn, _Trainer
from models.csi_codec.update_coder import CodedUpdate, UpdateCoder

MODEL_TYPE = "csi_translation"


@dataclass(frozen=True)
class TranslationConfig:
    """Sizes of T and R (the same for both) and the seed of their initial weights."""
    channels: int = 8               # c, the hidden channels
    kernel_size: int = 3
    num_convs: int = 3              # convs per module: 2 -> c (-> c)* -> 2
    seed: int = 0                   # initial (identity) weights; the gNB rebuilds them from it

    def __post_init__(self):
        for name in ("channels", "kernel_size"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if int(self.num_convs) != self.num_convs or self.num_convs < 2:
            raise ValueError(f"num_convs must be an integer >= 2 (a hidden layer), got {self.num_convs!r}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd ('same' padding centred), got {self.kernel_size}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "TranslationConfig":
        return config_from_dict(cls, d, MODEL_TYPE)


class TranslationModules(tf.Module):
    """Translation T (UE) and retranslation R (gNB), residual conv stacks, identity at init.

    translate:    x [batch, ant, sc, 2] float32 -> T(x), same shape
    retranslate:  x_hat [batch, ant, sc, 2] float32 -> R(x_hat), same shape
    Weights: [kernel_0, bias_0, ...] per module, kernels [k, k, in, out], biases [out].
    """

    def __init__(self, config: TranslationConfig | None = None):
        super().__init__(name=MODEL_TYPE)
        self.config = config or TranslationConfig()
        self.translation_weights = self._make("translation")
        self.retranslation_weights = self._make("retranslation")

    def _initial(self, prefix: str) -> list[np.ndarray]:
        """The identity-initialised weights of one module (a function of the config alone)."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, 0 if prefix == "translation" else 1])
        c, k = cfg.channels, cfg.kernel_size
        io = [(2, c)] + [(c, c)] * (cfg.num_convs - 2) + [(c, 2)]
        out = []
        for i, (cin, cout) in enumerate(io):
            last = i == len(io) - 1
            out.append(np.zeros((k, k, cin, cout), np.float32) if last else _glorot(rng, k, cin, cout))
            out.append(np.zeros(cout, np.float32))
        return out

    def _make(self, prefix: str) -> list[tf.Variable]:
        return [tf.Variable(w, name=f"{prefix}/conv{i // 2}/{'kernel' if i % 2 == 0 else 'bias'}")
                for i, w in enumerate(self._initial(prefix))]

    def reset(self) -> None:
        """Both modules back to the identity initialisation."""
        for prefix, vs in (("translation", self.translation_weights),
                           ("retranslation", self.retranslation_weights)):
            for v, w in zip(vs, self._initial(prefix)):
                v.assign(w)

    @staticmethod
    def _apply(x: tf.Tensor, w: Sequence[tf.Tensor]) -> tf.Tensor:
        h = x
        for i in range(0, len(w) - 2, 2):
            h = tf.nn.relu(_conv(h, w[i], w[i + 1]))
        return x + _conv(h, w[-2], w[-1])

    def translate(self, x: tf.Tensor, weights: Sequence[tf.Tensor] | None = None) -> tf.Tensor:
        return self._apply(x, self.translation_weights if weights is None else list(weights))

    def retranslate(self, x_hat: tf.Tensor, weights: Sequence[tf.Tensor] | None = None) -> tf.Tensor:
        return self._apply(x_hat, self.retranslation_weights if weights is None else list(weights))

    # -- weights ------------------------------------------------------------------------------------
    def _named(self) -> dict[str, tf.Variable]:
        return {v.name.split(":")[0]: v for v in self.translation_weights + self.retranslation_weights}

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self._named().items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        named = self._named()
        missing, unknown = sorted(set(named) - set(weights)), sorted(set(weights) - set(named))
        if missing or unknown:
            raise ValueError(f"weights do not fit this {MODEL_TYPE} config: missing {missing}, unknown {unknown}")
        for k, v in named.items():
            w = np.asarray(weights[k], np.float32)
            if tuple(w.shape) != tuple(v.shape):
                raise ValueError(f"weight {k}: shape {w.shape} != expected {tuple(v.shape)}")
            v.assign(w)

    def num_parameters(self) -> dict[str, int]:
        count = lambda vs: int(sum(int(np.prod(v.shape)) for v in vs))  # noqa: E731
        return {"translation": count(self.translation_weights), "retranslation": count(self.retranslation_weights)}

    def save(self, json_path, training: dict | None = None):
        return save_typed_checkpoint(json_path, MODEL_TYPE, asdict(self.config), self.get_weights(), training)

    @classmethod
    def load(cls, checkpoint) -> "TranslationModules":
        config, weights = load_typed_checkpoint(checkpoint, MODEL_TYPE)
        modules = cls(TranslationConfig.from_dict(config))
        modules.set_weights(weights)
        return modules

    def retranslation_update(self, coder: UpdateCoder) -> CodedUpdate:
        """R coded as a delta from its initial weights under ``coder`` (the bits the paper sets to
        zero). ``.bits`` is the coded size; ``.quantized`` the R the gNB would rebuild. Nothing
        here is changed."""
        return coder.encode(self._initial("retranslation"), [v.numpy() for v in self.retranslation_weights])


class TranslatedCodec(tf.Module):
    """A frozen ConvCsiCodec between translation T and retranslation R.

    forward:     x [batch, ant, sc, 2] -> (x_hat, bits [batch]); noisy (training) or rounded latents
    compress:    x -> (symbols [batch, h, w, C] int32, estimated bits [batch] float32), of T(x)
    decompress:  symbols -> R(backbone decoder(symbols)) [batch, ant, sc, 2] float32
    encoder_side_variables: T's weights (UE); decoder_side_variables: R's weights (gNB). The
    backbone's weights are never in either list and nothing here assigns them.
    """

    def __init__(self, backbone: ConvCsiCodec, modules: TranslationModules | None = None, noise_seed: int = 0):
        super().__init__(name="translated_conv_csi")
        self.backbone = backbone
        self.modules = modules or TranslationModules()
        self.noise = tf.random.Generator.from_seed(int(noise_seed))
        self._compress = tf.function(self._compress_impl, reduce_retracing=True)
        self._decompress = tf.function(self._decompress_impl, reduce_retracing=True)

    @property
    def config(self):
        """The backbone's ConvCsiConfig (sizes, CSI dimensions, latent shape)."""
        return self.backbone.config

    @property
    def encoder_side_variables(self) -> list[tf.Variable]:
        return list(self.modules.translation_weights)

    @property
    def decoder_side_variables(self) -> list[tf.Variable]:
        return list(self.modules.retranslation_weights)

    def forward(self, x, training: bool = True):
        x = self.backbone._check_input(x)
        y = self.backbone.encode(self.modules.translate(x))
        y_tilde = y + self.noise.uniform(tf.shape(y), -0.5, 0.5) if training else tf.math.round(y)
        return self.modules.retranslate(self.backbone.decode(y_tilde)), self.backbone.entropy.bits(y_tilde)

    def _compress_impl(self, x):
        y = tf.math.round(self.backbone.encode(self.modules.translate(x)))
        return tf.cast(y, tf.int32), self.backbone.entropy.bits(y)

    def _decompress_impl(self, y_hat):
        return self.modules.retranslate(self.backbone.decode(y_hat))

    def compress(self, x) -> tuple[np.ndarray, np.ndarray]:
        """As ``ConvCsiCodec.compress``, on T(x)."""
        sym, bits = self._compress(self.backbone._check_input(x))
        return sym.numpy(), bits.numpy()

    def decompress(self, symbols) -> np.ndarray:
        return self._decompress(tf.cast(tf.convert_to_tensor(symbols), tf.float32)).numpy()

    def probability_tables(self) -> ProbabilityTables:
        return self.backbone.probability_tables()


def translated_rd_loss(codec: TranslatedCodec, x, lmbda: float, training: bool = True) -> dict[str, tf.Tensor]:
    """Eq. 9 per CSI dimension, R + lambda D, through T, the frozen backbone and R."""
    x_hat, bits = codec.forward(x, training=training)
    terms = rd_terms(codec, x, x_hat, bits)
    terms["loss"] = terms["rate"] + lmbda * terms["distortion"]
    return terms


class TranslationFineTuner(_Trainer):
    """The TM scheme: the RD loss (same lambda as ``RdTrainer``) over T and R only. Each ``run``
    starts fresh Adam moments from the modules' current weights (``codec.modules.reset()``
    returns them to the identity)."""

    def __init__(self, codec: TranslatedCodec, lmbda: float, learning_rate: float = 1e-3):
        self.codec, self.lmbda = codec, float(lmbda)
        super().__init__(codec.encoder_side_variables + codec.decoder_side_variables, learning_rate)

    def _loss(self, xb):
        return translated_rd_loss(self.codec, xb, self.lmbda, training=True)

    def run(self, x: np.ndarray, steps: int, batch: int = 32, rng: np.random.Generator | None = None,
            log: LogFn | None = None, log_every: int = 100) -> dict[str, float]:
        """x [n, ant, sc, 2]; returns the last step's terms (loss, rate, distortion, nmse_db)."""
        self.reset_optimizer()
        return self._loop(x, steps, batch, rng if rng is not None else np.random.default_rng(0), log, log_every)
