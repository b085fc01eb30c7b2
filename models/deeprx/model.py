"""DeepRx-style fully convolutional receiver: resource grid in, one LLR per data RE and bit out.

Architecture (DeepRx, Honkala et al. 2021, as used by seeds/000): an input 3x3 convolution,
pre-activation ResNet blocks ``x + sep2(relu(norm2(sep1(relu(norm1(x))))))`` whose two
convolutions are depthwise-separable (3x3 depthwise, dilated over (OFDM symbol, subcarrier),
then 1x1 pointwise with bias), a 1x1 skip projection where the width changes, and an output
``relu(norm(.))`` + 1x1 convolution with ``max_bits_per_symbol`` channels: the LLRs.

Inputs (``make_features``), one real feature map x [batch, sym, sc, 4 * num_rx_ant + 3]:
  received grid y [batch, ant, sym, sc] complex (real, imag per antenna),
  raw LS channel estimate on the DMRS REs, y * conj(p) / |p|^2, zero elsewhere (real, imag per antenna),
  DMRS pilot grid p [batch, sym, sc] complex (real, imag; zero on non-pilot REs),
  noise level: log10 of the per-RE noise variance no [batch] (signal power 1), one constant channel.

Outputs: llr [batch, sym, sc, max_bits_per_symbol], Sionna's convention llr = ln P(b=1)/P(b=0)
(so ``llr > 0`` decides bit 1, as the link-level chain does). Only data REs and the first
``bits_per_symbol`` channels of each sample's modulation are meaningful: ``loss_mask`` builds
the mask [batch, sym, sc, bits] that every loss applies.

Normalisation is LayerNorm over the channels of each RE (or none): no statistic crosses
samples, so per-sample losses stay separable, which the influence functions need (a
BatchNorm would couple every sample of a batch into every other sample's loss).

Parameters are a flat, ordered list of ``tf.Variable``; ``forward`` also accepts a list of
tensors in the same order, so influence.py can differentiate per-sample losses with respect
to a parameter list directly (``per_sample_loss``).

Presets: ``small`` (13 K parameters, trainable on a CPU) and ``paper`` (11 blocks of
64-384 channels, 1.18 M parameters, DeepRx's ~1.2 M; the published per-block widths are not in the
seeds, so the widths are chosen to give its depth and size). TensorFlow is imported at module
level; the registry imports this module only when a scenario asks for ``deeprx``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, Literal, NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from models.checkpoint import load_typed_checkpoint, save_typed_checkpoint
from models.config import config_from_dict
from models.deeprx.layout import weight_layout
from models.registry import register_model

# (filters, dilation over OFDM symbols, dilation over subcarriers) per ResNet block
_SMALL_BLOCKS = ((24, 1, 1), (24, 2, 3), (32, 2, 6), (24, 2, 3), (24, 1, 1))
_PAPER_BLOCKS = ((64, 1, 1), (64, 2, 3), (128, 3, 6), (192, 4, 8), (256, 4, 8), (384, 4, 8),
                 (256, 4, 8), (192, 4, 8), (128, 3, 6), (64, 2, 3), (64, 1, 1))
PRESETS = {
    "small": {"input_filters": 24, "blocks": _SMALL_BLOCKS},
    "paper": {"input_filters": 64, "blocks": _PAPER_BLOCKS},
}
LN_EPS = 1e-5


@dataclass(frozen=True)
class DeepRxConfig:
    num_rx_ant: int = 1
    max_bits_per_symbol: int = 8          # output channels (256-QAM); lower orders mask the rest
    input_filters: int = 24
    blocks: tuple[tuple[int, int, int], ...] = _SMALL_BLOCKS
    kernel_size: int = 3
    norm: Literal["layer", "none"] = "layer"
    dtype: Literal["float32", "float64"] = "float32"   # float64 for exact-Hessian tests

    def __post_init__(self):
        for name in ("num_rx_ant", "max_bits_per_symbol", "input_filters", "kernel_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        blocks = tuple(tuple(int(x) for x in b) for b in self.blocks)
        for b in blocks:
            if len(b) != 3 or min(b) < 1:
                raise ValueError(f"each block must be (filters, dilation_sym, dilation_sc) >= 1, got {b}")
        object.__setattr__(self, "blocks", blocks)
        if self.norm not in ("layer", "none"):
            raise ValueError(f"norm must be 'layer' or 'none', got {self.norm!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "DeepRxConfig":
        return config_from_dict(cls, d, "deeprx")

    @classmethod
    def preset(cls, name: str, **overrides) -> "DeepRxConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown deeprx preset {name!r}; valid: {', '.join(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides})

    @property
    def num_input_channels(self) -> int:
        return 4 * self.num_rx_ant + 3

    def to_dict(self) -> dict:
        d = asdict(self)
        d["blocks"] = [list(b) for b in self.blocks]
        return d


# -- inputs and masks ------------------------------------------------------------------------------------
def raw_ls_estimate(y, pilots) -> tf.Tensor:
    """y [batch, ant, sym, sc] complex, pilots [batch, sym, sc] complex -> h_ls [batch, ant, sym, sc]:
    y * conj(p) / |p|^2 on the REs where p != 0, zero elsewhere (no interpolation: the network does it)."""
    y = tf.convert_to_tensor(y, tf.complex64)
    p = tf.convert_to_tensor(pilots, tf.complex64)[:, None]
    p2 = tf.math.real(p * tf.math.conj(p))
    inv = tf.where(p2 > 0, tf.math.conj(p) / tf.cast(tf.where(p2 > 0, p2, 1.0), tf.complex64), tf.zeros_like(p))
    return y * inv


def make_features(y, pilots, no, dtype: str = "float32") -> tf.Tensor:
    """y [batch, ant, sym, sc] complex, pilots [batch, sym, sc] complex, no [batch] linear noise
    variance per RE -> x [batch, sym, sc, 4 * ant + 3] (see the module docstring for the order)."""
    y = tf.convert_to_tensor(y, tf.complex64)
    p = tf.convert_to_tensor(pilots, tf.complex64)
    if y.shape.rank != 4 or p.shape.rank != 3:
        raise ValueError(f"y must be [batch, ant, sym, sc] and pilots [batch, sym, sc], got "
                         f"{tuple(y.shape)} and {tuple(p.shape)}")
    h_ls = raw_ls_estimate(y, p)
    to_last = lambda z: tf.transpose(z, [0, 2, 3, 1])  # noqa: E731  [b, ant, sym, sc] -> [b, sym, sc, ant]
    no = tf.convert_to_tensor(no, tf.float32)
    noise = tf.ones_like(tf.math.real(p))[..., None] * (tf.math.log(no) / math.log(10.0))[:, None, None, None]
    x = tf.concat([to_last(tf.math.real(y)), to_last(tf.math.imag(y)),
                   to_last(tf.math.real(h_ls)), to_last(tf.math.imag(h_ls)),
                   tf.math.real(p)[..., None], tf.math.imag(p)[..., None], noise], axis=-1)
    return tf.cast(x, dtype)


def loss_mask(data_re, bits_per_symbol, max_bits_per_symbol: int, dtype: str = "float32") -> tf.Tensor:
    """data_re [batch, sym, sc] bool (REs that carry data), bits_per_symbol [batch] int (each sample's
    modulation order) -> mask [batch, sym, sc, max_bits_per_symbol] in {0, 1}."""
    data_re = tf.cast(tf.convert_to_tensor(data_re), dtype)
    bps = tf.convert_to_tensor(bits_per_symbol, tf.int32)
    if int(tf.reduce_max(bps)) > max_bits_per_symbol or int(tf.reduce_min(bps)) < 1:
        raise ValueError(f"bits_per_symbol must be in 1..{max_bits_per_symbol}, got {bps.numpy().tolist()}")
    valid = tf.cast(tf.range(max_bits_per_symbol)[None, :] < bps[:, None], dtype)     # [batch, bits]
    return data_re[..., None] * valid[:, None, None, :]


def grid_to_coded(llr, data_re, bits_per_symbol: int) -> tf.Tensor:
    """llr [batch, sym, sc, bits] -> [batch, num_data_re * bits_per_symbol] in the chain's coded-bit
    order (what ``TBDecoder`` takes): the data REs in (symbol, subcarrier) row-major order, as
    Sionna's ``ResourceGridMapper`` fills them, each RE's first ``bits_per_symbol`` bits.
    ``data_re`` [sym, sc] bool is the same for the whole batch (one MCS and DMRS layout per call)."""
    llr = tf.convert_to_tensor(llr)
    re = tf.boolean_mask(llr, tf.convert_to_tensor(data_re, tf.bool), axis=1)    # [batch, num_data_re, bits]
    return tf.reshape(re[..., :bits_per_symbol], [tf.shape(llr)[0], -1])


# -- losses: per sample, so influence can take per-sample gradients ---------------------------------------
def _masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """values, mask [batch, sym, sc, bits] -> [batch]: sum(mask * values) / max(sum(mask), 1)."""
    n = tf.reduce_sum(mask, axis=[1, 2, 3])
    return tf.reduce_sum(mask * values, axis=[1, 2, 3]) / tf.maximum(n, tf.ones_like(n))


def masked_bce(llr, bits, mask) -> tf.Tensor:
    """Binary cross-entropy in nats per bit over the masked (data RE, valid bit) entries.

    llr, bits (0/1), mask (0/1) [batch, sym, sc, bits] -> [batch]."""
    llr = tf.convert_to_tensor(llr)
    bits, mask = tf.cast(bits, llr.dtype), tf.cast(mask, llr.dtype)
    return _masked_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=bits, logits=llr), mask)


def soft_ber(llr, bits, mask) -> tf.Tensor:
    """BER-oriented differentiable surrogate: masked mean of P(hard decision wrong) = sigmoid(-s * llr),
    s = 2b - 1; it tends to the hard BER as |llr| grows. [batch, sym, sc, bits] -> [batch]."""
    llr = tf.convert_to_tensor(llr)
    bits, mask = tf.cast(bits, llr.dtype), tf.cast(mask, llr.dtype)
    return _masked_mean(tf.sigmoid(-(2.0 * bits - 1.0) * llr), mask)


def hard_ber(llr, bits, mask) -> tf.Tensor:
    """Uncoded BER of hard decisions (llr > 0 -> 1) over the masked entries: [batch]."""
    llr = tf.convert_to_tensor(llr)
    bits, mask = tf.cast(bits, llr.dtype), tf.cast(mask, llr.dtype)
    return _masked_mean(tf.cast(tf.not_equal(tf.cast(llr > 0, llr.dtype), bits), llr.dtype), mask)


LOSSES: dict[str, Callable] = {"bce": masked_bce, "soft_ber": soft_ber}


# -- the network ----------------------------------------------------------------------------------------
def _normalise(h: tf.Tensor) -> tf.Tensor:
    """LayerNorm over the channels of each RE without its gain and offset (no statistic crosses
    REs or samples): (h - mean) / sqrt(var + eps).

    Written out rather than with ``tf.nn.moments``: moments computes the variance around
    ``stop_gradient(mean)``, which leaves first derivatives right but drops a term of the second
    derivatives, so Hessian-vector products through it are wrong (the finite-difference test
    catches it)."""
    mean = tf.reduce_mean(h, axis=-1, keepdims=True)
    var = tf.reduce_mean(tf.square(h - mean), axis=-1, keepdims=True)
    return (h - mean) * tf.math.rsqrt(var + LN_EPS)


def shifted_windows(h: tf.Tensor, k: int, dil: tuple[int, int]):
    """h [batch, sym, sc, c] -> the k * k windows (i, j, h_pad[:, i d_sym : i d_sym + sym, j d_sc : j d_sc + sc])
    of the input of a SAME k x k convolution (odd k) with dilation ``dil`` = (over symbols, over
    subcarriers): h zero-padded by (k - 1) / 2 * d on each side, as SAME pads it. Under XLA the grid
    size must be static (the slices' gradients need it)."""
    n_t = h.shape[1] if h.shape[1] is not None else tf.shape(h)[1]
    n_f = h.shape[2] if h.shape[2] is not None else tf.shape(h)[2]
    pt, pf = (k // 2) * dil[0], (k // 2) * dil[1]
    hp = tf.pad(h, [[0, 0], [pt, pt], [pf, pf], [0, 0]])
    for i in range(k):
        for j in range(k):
            yield i, j, hp[:, i * dil[0]:i * dil[0] + n_t, j * dil[1]:j * dil[1] + n_f]


def depthwise_shifted(h: tf.Tensor, kernel: tf.Tensor, dil: tuple[int, int]) -> tf.Tensor:
    """The SAME depthwise convolution of h [batch, sym, sc, c] with kernel [k, k, c, 1] and dilation
    ``dil`` as sum_{i, j} kernel[i, j] * window(i, j) (``shifted_windows``): elementwise ops only
    (see ``DeepRx.forward``'s ``xla``)."""
    out = None
    for i, j, window in shifted_windows(h, int(kernel.shape[0]), dil):
        term = window * kernel[i, j, :, 0]
        out = term if out is None else out + term
    return out


class Tap(NamedTuple):
    """One parametric op of ``DeepRx.forward``: ``out`` = op(``inp``) with the parameters from
    position ``first`` of ``params`` on. kind: "conv" (kernel [k, k, cin, cout] and bias; 1x1 or
    k x k, SAME), "conv_nobias" (kernel only), "depthwise" (kernel [k, k, c, 1], dilation ``dil``,
    SAME) or "norm" (``inp`` the normalised values, ``out`` = inp * gamma + beta)."""
    kind: str
    inp: tf.Tensor
    out: tf.Tensor
    first: int
    dil: tuple[int, int]


@register_model("deeprx")
class DeepRx(tf.Module):
    """DeepRx-style receiver (see the module docstring).

    __call__ / forward:  x [batch, sym, sc, 4 * num_rx_ant + 3] -> llr [batch, sym, sc, max_bits_per_symbol]
    per_sample_loss:     (params list, batch {"x", "bits", "mask"}) -> [batch] (for influence.py)
    llr_grid, weights:   the neural receiver slot (``models.base.NeuralReceiver``), traced into the
                         link-level chain's compiled call
    """

    Config = DeepRxConfig

    def __init__(self, config: DeepRxConfig | None = None, seed: int = 0):
        super().__init__(name="deeprx")
        self.config = config or DeepRxConfig()
        cfg = self.config
        rng = np.random.default_rng(seed)
        self._names: list[str] = []
        self.params: list[tf.Variable] = []
        k = cfg.kernel_size
        for w in weight_layout(k, cfg.num_input_channels, cfg.input_filters, cfg.blocks, cfg.norm,
                               cfg.max_bits_per_symbol):
            if w.init == "glorot":
                value = self._glorot(rng, w.shape)
            elif w.init == "glorot_depthwise":
                value = self._glorot(rng, w.shape, fan=(k * k, k * k))
            else:
                value = (np.ones if w.init == "ones" else np.zeros)(w.shape)
            self._add(w.name, value)
        # one function object per loss, so the compiled gradient functions keyed on it (influence.py,
        # targeted.py) are traced once per model, not once per fine-tuning
        self._per_sample_losses: dict[str, Callable] = {}
        # one trace for every batch size and grid size
        self._forward = tf.function(self.forward, input_signature=[
            tf.TensorSpec([None, None, None, cfg.num_input_channels], cfg.dtype)])

    @staticmethod
    def _glorot(rng, shape, fan: tuple[int, int] | None = None) -> np.ndarray:
        fan_in, fan_out = fan or (int(np.prod(shape[:-1])), int(np.prod(shape[:-2])) * shape[-1])
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)

    def _add(self, name: str, value: np.ndarray) -> None:
        self._names.append(name)
        self.params.append(tf.Variable(np.asarray(value, self.config.dtype), name=name.replace("/", "_")))

    # -- weights ------------------------------------------------------------------------------------
    @property
    def param_names(self) -> list[str]:
        return list(self._names)

    def num_parameters(self) -> int:
        return int(sum(int(np.prod(v.shape)) for v in self.params))

    def get_weights(self) -> dict[str, np.ndarray]:
        return {n: v.numpy() for n, v in zip(self._names, self.params)}

    def set_weights(self, weights: dict[str, np.ndarray] | Sequence) -> None:
        """By name (checkpoint layout) or as a list in ``params`` order."""
        if not isinstance(weights, dict):
            if len(weights) != len(self.params):
                raise ValueError(f"expected {len(self.params)} weight tensors, got {len(weights)}")
            weights = dict(zip(self._names, weights))
        missing, unknown = sorted(set(self._names) - set(weights)), sorted(set(weights) - set(self._names))
        if missing or unknown:
            raise ValueError(f"weights do not fit this deeprx config: missing {missing}, unknown {unknown}")
        for n, v in zip(self._names, self.params):
            w = np.asarray(weights[n])
            if tuple(w.shape) != tuple(v.shape):
                raise ValueError(f"weight {n}: shape {w.shape} != expected {tuple(v.shape)}")
            v.assign(w.astype(self.config.dtype))

    def save(self, json_path, training: dict | None = None):
        return save_typed_checkpoint(json_path, "deeprx", self.config.to_dict(), self.get_weights(), training)

    @classmethod
    def load(cls, checkpoint, seed: int = 0) -> "DeepRx":
        config, weights = load_typed_checkpoint(checkpoint, "deeprx")
        model = cls(DeepRxConfig.from_dict(config), seed=seed)
        model.set_weights(weights)
        return model

    # -- the network side's adaptation (models.base.ReceiverAdapter) ---------------------------------
    @staticmethod
    def adapter(checkpoint, adaptation, num_subcarriers: int):
        """The network side's targeted fine-tuning of this receiver (``models.deeprx.online``)."""
        from models.deeprx.online import NetworkFineTuner

        return NetworkFineTuner(checkpoint, adaptation, num_subcarriers)

    @staticmethod
    def update_coder(update):
        """The downlink coder of its weight updates under ``update`` (a ``ReceiverUpdateConfig``): the
        CSI decoder updates' ``models.csi_codec.update_coder.make_update_coder``."""
        from models.csi_codec.update_coder import make_update_coder

        return make_update_coder(update)

    # -- forward --------------------------------------------------------------------------------------
    def forward(self, x: tf.Tensor, params: Sequence[tf.Tensor] | None = None, taps: list | None = None,
                xla: bool = False) -> tf.Tensor:
        """x [batch, sym, sc, C] -> llr [batch, sym, sc, max_bits_per_symbol]; ``params`` replaces
        the variables (same order as ``params``).

        ``xla``: the caller compiles this with XLA. The depthwise convolutions are then the sum of
        k * k shifted, scaled copies of the input (``depthwise_shifted``), which XLA fuses with the
        norms around them; XLA's own depthwise convolution on a CPU is ~8x slower than TensorFlow's
        (``small`` preset, batch 64, 2 cores: 1,080 ms a forward pass, 102 ms shifted, 128 ms
        TensorFlow's without XLA). The values agree to float rounding.

        ``taps``: a list that receives one ``Tap`` per parametric op, in order (``per_sample_grads``
        differentiates the loss with respect to their outputs). A separable convolution is written
        as TensorFlow's ``separable_conv2d`` computes it (a depthwise convolution, then a 1x1 one),
        so that its intermediate can be tapped; the values are the same."""
        cfg = self.config
        it = iter(self.params if params is None else params)
        pos = [0]

        def nxt():
            pos[0] += 1
            return next(it)

        def tap(kind: str, inp, out, first: int, dil=(1, 1)):
            if taps is not None:
                taps.append(Tap(kind, inp, out, first, tuple(dil)))
            return out

        layer = cfg.norm == "layer"

        def norm_relu(h):
            if layer:
                first = pos[0]
                gamma, beta = nxt(), nxt()
                n = _normalise(h)
                h = tap("norm", n, n * gamma + beta, first)
            return tf.nn.relu(h)

        def sep(h, dil):
            first = pos[0]
            dw, pw, b = nxt(), nxt(), nxt()
            d = (depthwise_shifted(h, dw, dil) if xla
                 else tf.nn.depthwise_conv2d(h, dw, [1, 1, 1, 1], "SAME", dilations=dil))
            d = tap("depthwise", h, d, first, dil)
            return tap("conv", d, tf.nn.conv2d(d, pw, [1, 1, 1, 1], "VALID") + b, first + 1)

        x = self._check_input(x)
        w, b = nxt(), nxt()
        h = tap("conv", x, tf.nn.conv2d(x, w, strides=1, padding="SAME") + b, 0)
        cin = cfg.input_filters
        for cout, d_sym, d_sc in cfg.blocks:
            r = sep(norm_relu(h), (d_sym, d_sc))
            r = sep(norm_relu(r), (d_sym, d_sc))
            if cin == cout:
                skip = h
            else:
                first = pos[0]
                skip = tap("conv_nobias", h, tf.nn.conv2d(h, nxt(), strides=1, padding="SAME"), first)
            h = skip + r
            cin = cout
        h = norm_relu(h)
        first = pos[0]
        w, b = nxt(), nxt()
        out = tap("conv", h, tf.nn.conv2d(h, w, strides=1, padding="SAME") + b, first)
        if next(it, None) is not None:
            raise ValueError("more parameter tensors than this deeprx config uses")
        return out

    def _check_input(self, x) -> tf.Tensor:
        x = tf.convert_to_tensor(x, self.config.dtype)
        c = self.config.num_input_channels
        if x.shape.rank != 4 or x.shape[-1] != c:
            raise ValueError(f"DeepRx input must be [batch, sym, sc, {c}], got {tuple(x.shape)}")
        return x

    def __call__(self, x) -> tf.Tensor:
        """Inference with the current variables (compiled once)."""
        return self._forward(self._check_input(x))

    def receive(self, y, pilots, no) -> tf.Tensor:
        """y [batch, ant, sym, sc] complex, pilots [batch, sym, sc] complex, no [batch] ->
        llr [batch, sym, sc, max_bits_per_symbol] (``grid_to_coded`` gives the decoder's order)."""
        return self(make_features(y, pilots, no, self.config.dtype))

    # -- the neural receiver slot (models.base.NeuralReceiver) ------------------------------------------
    @property
    def num_rx_ant(self) -> int:
        return self.config.num_rx_ant

    @property
    def max_bits_per_symbol(self) -> int:
        return self.config.max_bits_per_symbol

    @property
    def graph_key(self) -> tuple:
        """Equal for every DeepRx of the same config: their ``llr_grid`` traces to the same graph."""
        return ("deeprx", self.config)

    def llr_grid(self, y, pilots, no, params: Sequence[tf.Tensor]) -> tf.Tensor:
        """y [batch, ant, sym, sc] complex64, pilots [batch, sym, sc] complex64, no [batch] float32,
        params (``params`` order) -> llr [batch, sym, sc, max_bits_per_symbol] float32; traceable
        (the link-level chain compiles it into its call)."""
        x = make_features(y, pilots, no, self.config.dtype)
        return tf.cast(self.forward(x, list(params), xla=True), tf.float32)

    def weights(self) -> list[np.ndarray]:
        """The current weights in ``params`` order."""
        return [v.numpy() for v in self.params]

    def per_sample_loss(self, loss: str = "bce") -> Callable[[Sequence[tf.Tensor], dict], tf.Tensor]:
        """(params, batch {"x" [b, sym, sc, C], "bits" and "mask" [b, sym, sc, bits]}) -> loss [b];
        ``loss``: "bce" (masked BCE, the training loss) or "soft_ber" (BER-oriented surrogate)."""
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        if loss not in self._per_sample_losses:
            fn = LOSSES[loss]

            def per_sample(params, batch):
                return fn(self.forward(batch["x"], params), batch["bits"], batch["mask"])

            from models.deeprx.per_sample_grads import per_sample_gradient_fn

            # influence.per_sample_gradients takes this instead of vectorising the gradient
            per_sample.per_sample_gradients = per_sample_gradient_fn(self, fn)
            self._per_sample_losses[loss] = per_sample
        return self._per_sample_losses[loss]
