"""The two ends of the CSI feedback link: the UE's encoder side and the gNB's decoder side.

They share nothing at run time but bytes: the UE sends range-coded latents and, after a
full-model fine-tuning, a range-coded decoder update; the gNB decodes reports with the decoder
and entropy model it holds and changes them only by decoding an update's bytes against its own
current weights. Both derive the latent probability tables from their entropy model with the
same code, so equal decoder-side weights give equal tables and decodable streams.
"""
from __future__ import annotations

import numpy as np

from models.csi_codec.bitstream import CodedLatents, LatentCoder
from models.csi_codec.model import ConvCsiCodec
from models.csi_codec.update_coder import CodedUpdate, UpdateCoder


class _Tables:
    """A LatentCoder rebuilt whenever the decoder-side weights change."""

    def __init__(self, codec: ConvCsiCodec):
        self.codec = codec
        self.refresh()

    def refresh(self) -> None:
        self.coder = LatentCoder(self.codec.probability_tables(), self.codec.config.latent_shape)


class CsiEncoderSide(_Tables):
    """UE: compresses CSI into bytes; after fine-tuning, codes the decoder update.

    report:      x [reports, ant, sc, 2] -> (CodedLatents, or a list of one per report,
                 model bit estimate [reports] float32[, x_expected [reports, ant, sc, 2] float32:
                 the UE's decoder side applied to the symbols, what a gNB holding the same decoder
                 side reconstructs])
    make_update: -> CodedUpdate of (current decoder side - the gNB's); the UE's own decoder side
                 becomes the quantised one the gNB will rebuild
    """

    def __init__(self, codec: ConvCsiCodec, update_coder: UpdateCoder | None = None):
        super().__init__(codec)
        self.update_coder = update_coder
        # what the gNB holds (the reference for the next update)
        self.gnb_decoder_side = [v.numpy() for v in codec.decoder_side_variables]

    def report(self, x, per_report: bool = False, reconstruct: bool = False):
        symbols, est_bits = self.codec.compress(x)
        coded = self.coder.encode_each(symbols) if per_report else self.coder.encode(symbols)
        if reconstruct:
            return coded, est_bits, self.codec.decompress(symbols)
        return coded, est_bits

    def make_update(self) -> CodedUpdate:
        if self.update_coder is None:
            raise ValueError("this UE has no update coder (the scheme sends no decoder updates)")
        new = [v.numpy() for v in self.codec.decoder_side_variables]
        coded = self.update_coder.encode(self.gnb_decoder_side, new)
        for v, q in zip(self.codec.decoder_side_variables, coded.quantized):
            v.assign(q)
        self.gnb_decoder_side = [q.copy() for q in coded.quantized]
        self.refresh()
        return coded


class CsiDecoderSide(_Tables):
    """gNB: decodes CSI reports; changes its decoder only through update bytes.

    decode_reports: CodedLatents | bytes, num_reports -> x_hat [reports, ant, sc, 2] float32
    apply_update:   bytes -> None (decoder side := old + k t decoded from the bytes)
    """

    def __init__(self, codec: ConvCsiCodec, update_coder: UpdateCoder | None = None):
        super().__init__(codec)
        self.update_coder = update_coder

    def decoder_side_weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.codec.decoder_side_variables]

    def decode_reports(self, coded: CodedLatents | bytes, num_reports: int | None = None) -> np.ndarray:
        return self.codec.decompress(self.coder.decode(coded, num_reports))

    def apply_update(self, data: bytes) -> None:
        if self.update_coder is None:
            raise ValueError("this gNB has no update coder (the scheme sends no decoder updates)")
        new = self.update_coder.decode(self.decoder_side_weights(), data)
        for v, w in zip(self.codec.decoder_side_variables, new):
            v.assign(w)
        self.refresh()
