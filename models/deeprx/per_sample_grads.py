"""Per-sample gradients of a DeepRx loss in one batched backward pass.

The influence scores need the gradient of every pool sample's loss separately ([N, num_params]).
``tf.vectorized_map`` over the samples has no vectorised rule for the gradient of a convolution's
kernel (TensorFlow warns "Conv2DBackpropFilter uses a while_loop") and runs one sample at a
time: 0.8 s per 64 samples of the ``small`` preset on 2 cores, 13 s for a pool of 1,000.

Here instead (Goodfellow 2015, "Efficient per-example gradient computations"; what Opacus does
with hooks): one forward pass records every parametric op's input and output (``DeepRx.forward``'s
``taps``), one backward pass of the summed loss gives dL/d(output) of every op for the whole batch,
and since no op mixes samples (LayerNorm is per RE), sample b's rows of those are the gradients of
sample b's own loss. Each parameter's per-sample gradient is then a contraction over the grid:

  kernel [k, k, cin, cout]:  dW[b, i, j] = sum_{t, f} x_pad[b, t + i d_t, f + j d_f, :] (x) G[b, t, f, :]
  depthwise kernel:          the same per channel (no cross-channel product)
  bias, LayerNorm beta:      sum_{t, f} G[b, t, f, :];  LayerNorm gamma: sum_{t, f} n[b, t, f, :] G[b, t, f, :]

with x_pad the op's input zero-padded as SAME padding pads it (``model.shifted_windows``). The result equals the
per-sample ``tf.GradientTape`` gradients to float rounding (tests/models/deeprx/test_per_sample_grads.py).
"""
from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from models.deeprx.model import shifted_windows


def _kernel_grad(x: tf.Tensor, g: tf.Tensor, k: int, dil: tuple[int, int], depthwise: bool) -> tf.Tensor:
    """Per-sample kernel gradient [b, k, k, cin, cout] (depthwise: [b, k, k, c, 1])."""
    rows = {}
    for i, j, xs in shifted_windows(x, k, dil):
        rows[i, j] = (tf.reduce_sum(xs * g, axis=[1, 2])[..., None] if depthwise
                      else tf.einsum("btfi,btfo->bio", xs, g))
    return tf.stack([tf.stack([rows[i, j] for j in range(k)], axis=1) for i in range(k)], axis=1)


def tap_gradients(taps: Sequence, grads: Sequence[tf.Tensor], params: Sequence[tf.Tensor]) -> list[tf.Tensor]:
    """Per-sample gradients [b, *shape] of every parameter (``params`` order) from the forward's
    taps and dL/d(tap output) ``grads`` (same order as the taps)."""
    out: list[tf.Tensor | None] = [None] * len(params)
    for tap, g in zip(taps, grads):
        sum_g = tf.reduce_sum(g, axis=[1, 2])
        if tap.kind == "norm":
            out[tap.first] = tf.reduce_sum(tap.inp * g, axis=[1, 2])
            out[tap.first + 1] = sum_g
            continue
        kernel = params[tap.first]
        k = int(kernel.shape[0])
        out[tap.first] = _kernel_grad(tap.inp, g, k, tap.dil, depthwise=tap.kind == "depthwise")
        if tap.kind == "conv":
            out[tap.first + 1] = sum_g
    missing = [i for i, o in enumerate(out) if o is None]
    if missing:
        raise ValueError(f"the forward pass tapped no op for parameters {missing}")
    return out


def per_sample_gradient_fn(model, loss: Callable) -> Callable:
    """A compiled (params, batch {"x", "bits", "mask"}) -> per-sample gradients [b, num_params] of
    ``loss(llr, bits, mask) -> [b]`` (a ``models.deeprx.model.LOSSES`` entry), flattened in
    ``params`` order (as ``influence.ParamFlattener.flatten``)."""

    @tf.function(reduce_retracing=True)
    def grads(params, batch):
        taps: list = []
        with tf.GradientTape() as tape:
            tape.watch(params)
            llr = model.forward(batch["x"], params, taps=taps)
            total = tf.reduce_sum(loss(llr, batch["bits"], batch["mask"]))
        g = tape.gradient(total, [t.out for t in taps])
        per_param = tap_gradients(taps, g, params)
        b = tf.shape(batch["x"])[0]
        return tf.concat([tf.reshape(p, [b, -1]) for p in per_param], axis=1)

    return grads
