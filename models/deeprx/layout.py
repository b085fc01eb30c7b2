"""The DeepRx weight layout: every parameter's name, shape and initialiser, in order, from the
config's sizes. ``DeepRx`` builds its variables from it and validation checks a checkpoint's arrays
against it, without TensorFlow."""
from __future__ import annotations

from typing import Literal, NamedTuple

Init = Literal["glorot", "glorot_depthwise", "zeros", "ones"]


class Weight(NamedTuple):
    name: str
    shape: tuple[int, ...]
    init: Init


def weight_layout(kernel_size: int, num_input_channels: int, input_filters: int, blocks, norm: str,
                  max_bits_per_symbol: int) -> list[Weight]:
    """input conv, per block (norm, depthwise + pointwise conv, twice, and a 1x1 skip when the width
    changes), output norm and 1x1 conv to ``max_bits_per_symbol`` LLRs. ``blocks``: (filters, _, _)."""
    k = int(kernel_size)
    out = [Weight("input/kernel", (k, k, int(num_input_channels), int(input_filters)), "glorot"),
           Weight("input/bias", (int(input_filters),), "zeros")]

    def norm_of(name: str, channels: int) -> list[Weight]:
        return ([Weight(name + "/gamma", (channels,), "ones"), Weight(name + "/beta", (channels,), "zeros")]
                if norm == "layer" else [])

    cin = int(input_filters)
    for i, block in enumerate(blocks):
        cout, p = int(block[0]), f"block{i}/"
        for j, width in ((1, cin), (2, cout)):
            out += norm_of(f"{p}norm{j}", width)
            out += [Weight(f"{p}dw{j}", (k, k, width, 1), "glorot_depthwise"),
                    Weight(f"{p}pw{j}", (1, 1, width, cout), "glorot"),
                    Weight(f"{p}bias{j}", (cout,), "zeros")]
        if cin != cout:
            out.append(Weight(p + "skip", (1, 1, cin, cout), "glorot"))
        cin = cout
    out += norm_of("output/norm", cin)
    out += [Weight("output/kernel", (1, 1, cin, int(max_bits_per_symbol)), "glorot"),
            Weight("output/bias", (int(max_bits_per_symbol),), "zeros")]
    return out


def checkpoint_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Array name -> shape that a deeprx checkpoint's config implies (KeyError/TypeError/ValueError if
    the config lacks a size or holds a wrong one)."""
    layout = weight_layout(config["kernel_size"], 4 * int(config["num_rx_ant"]) + 3, config["input_filters"],
                           config["blocks"], config.get("norm", "layer"), config["max_bits_per_symbol"])
    return {w.name: w.shape for w in layout}
