"""The conv CSI codec's weight layout from its config's sizes: the convolutions' (in, out) channels
and the DeepFactorized entropy model's shapes. The codec builds its variables from it and validation
checks a checkpoint's arrays against it, without TensorFlow."""
from __future__ import annotations


def conv_channels(filters: int, latent_channels: int, num_pools: int) -> dict[str, list[tuple[int, int]]]:
    """(in, out) channels of each conv: the encoder maps (real, imag) to the latent, the decoder back."""
    f, c, p = int(filters), int(latent_channels), int(num_pools)
    return {"encoder": [(2, f)] + [(f, f)] * (p - 1) + [(f, c)],
            "decoder": [(c, f)] + [(f, f)] * (p - 1) + [(f, 2)]}


def entropy_shapes(channels: int, filters) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of the DeepFactorized parameters in order: matrix_i [C, d_i+1, d_i], bias_i
    [C, d_i+1, 1], factor_i [C, d_i+1, 1] (not after the last layer), with d = (1, *filters, 1)."""
    full = (1, *(int(f) for f in filters), 1)
    out = []
    for i in range(len(full) - 1):
        out += [(f"matrix_{i}", (int(channels), full[i + 1], full[i])), (f"bias_{i}", (int(channels), full[i + 1], 1))]
        if i < len(full) - 2:
            out.append((f"factor_{i}", (int(channels), full[i + 1], 1)))
    return out


def checkpoint_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Array name -> shape that a conv_csi checkpoint's config implies (KeyError/TypeError/ValueError if
    a size is missing or wrong)."""
    k = int(config["kernel_size"])
    out = {}
    for side, io in conv_channels(config["filters"], config["latent_channels"], config["num_pools"]).items():
        for i, (cin, cout) in enumerate(io):
            out[f"{side}/conv{i}/kernel"] = (k, k, cin, cout)
            out[f"{side}/conv{i}/bias"] = (cout,)
    out.update({f"entropy/{name}": shape for name, shape in
                entropy_shapes(config["latent_channels"], config["entropy_filters"])})
    return out
