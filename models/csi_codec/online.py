"""Online fine-tuning of the CSI codec on a moving UE: both ends of one UE's CSI feedback.

The paper's schemes (seeds/002, Sec. V), as the event loop runs them:

- ``none``:         the pre-trained codec throughout.
- ``encoder_only``: the UE fine-tunes its encoder with the RD loss (eq. 9); the decoder and the
                    entropy model stay as the gNB has them, so nothing is sent. The new encoder
                    is used once the fine-tuning's compute time has passed.
- ``full_model``:   encoder, decoder and entropy model with eq. 21 (RD + beta x update bits);
                    the decoder-side delta is quantised and range-coded (``UpdateCoder``) and
                    sent on the feedback link. The UE keeps encoding with its old encoder and
                    tables until the update has arrived at the gNB (a report coded with the new
                    tables could not be decoded by the old ones), then both switch together.
- ``genie``:        full-model fine-tuning with the RD loss only and the new (unquantised)
                    decoder side handed to the gNB for free when the compute time has passed.
- ``translation``:  the TM baseline (``translation.py``): the backbone stays frozen; translation
                    T before the encoder (UE) and retranslation R after the decoder (gNB) are
                    fine-tuned with the RD loss. As in the paper, sending R costs nothing (its
                    lower-bound rate): R reaches the gNB for free when the compute time has passed.

Compute time is modelled, not measured, so that the same seed gives the same logs: a training
step costs 3 x the forward FLOPs of its batch (forward + backward), and the UE runs
``ue_gflops`` GFLOP/s. ``flops_per_report`` counts the codec's convolutions (2 FLOPs a MAC).

One ``OnlineCsiCodec`` per UE holds three codecs: ``ue`` (what the UE encodes with), ``gnb``
(what the gNB decodes with; changed only by update bytes, or for free in ``genie``) and
``work`` (the UE's fine-tuning copy, carried from one fine-tuning to the next).

Model versions: a report can be encoded before an update takes effect and reach the gNB after
it (it waits behind the update on the FIFO feedback link, or is on the link when a free update
lands). Each report carries the version of the decoder side it was encoded for (``version``,
bumped by every update that changes the gNB's decoder side), and the gNB keeps the decoder-side
weights of an old version while reports of that version are still undecoded, decoding them
with those. The tag is not charged: one bit that toggles per update would do, since at most a
few versions are ever outstanding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.base import Update
from models.checkpoint import read_checkpoint_config
from models.csi_codec.config import CsiOnlineConfig


def flops_per_report(cfg) -> float:
    """Forward FLOPs of encoder + decoder for one CSI matrix (2 per multiply-accumulate)."""
    a, s, k, f, c, p = cfg.num_ant, cfg.num_sc, cfg.kernel_size, cfg.filters, cfg.latent_channels, cfg.num_pools
    macs = 0
    for i in range(p):                                    # encoder conv i at resolution / 2^i, then pool
        macs += (a >> i) * (s >> i) * k * k * (2 if i == 0 else f) * f
    macs += (a >> p) * (s >> p) * k * k * f * c           # latent conv
    for i in range(p):                                    # decoder conv i at resolution / 2^(p-i), then upsample
        macs += (a >> (p - i)) * (s >> (p - i)) * k * k * (c if i == 0 else f) * f
    macs += a * s * k * k * f * 2                         # output conv
    return 2.0 * macs


@dataclass
class CsiReport:
    """One compressed CSI report of ``n`` matrices in one range-coded stream: the bytes on the link
    and what the log needs."""
    data: bytes
    bits: int                       # coded latent bits (8 x bytes)
    bits_estimated: float           # the entropy model's -log2 p of the symbols
    x: np.ndarray                   # [n, ant, sc, 2] the CSI it compresses (for the NMSE, not sent)
    x_expected: np.ndarray          # [n, ant, sc, 2] what the gNB will reconstruct: the UE's copy of the
                                    # decoder side of ``version`` applied to the symbols (not sent)
    version: int = 0                # decoder-side version it was encoded for (see the module docstring)
    pending: bool = True            # not decoded yet


class OnlineCsiCodec:
    """Both ends of one UE's neural CSI feedback, with online fine-tuning.

    report:     x [n, ant, sc, 2] -> CsiReport (UE: encode the n matrices with the active encoder and
                tables into one stream)
    decode:     CsiReport -> x_hat [n, ant, sc, 2] float32 (gNB: decode the bytes with the decoder
                side of the report's version)
    fine_tune:  x [n, ant, sc, 2] -> Update | None (UE; None for scheme ``none``)
    """

    def __init__(self, checkpoint: str, online: CsiOnlineConfig, rng: np.random.Generator,
                 reports_per_update: float = 1.0):
        from models.csi_codec.model import ConvCsiCodec
        from models.csi_codec.sides import CsiDecoderSide, CsiEncoderSide

        self.online = online
        self.scheme = online.scheme
        self.rng = rng
        if self.scheme == "translation":     # the frozen backbone between T (UE) and R (gNB)
            from models.csi_codec.translation import TranslatedCodec

            def load():
                return TranslatedCodec(ConvCsiCodec.load(checkpoint))
        else:
            def load():
                return ConvCsiCodec.load(checkpoint)
        self.ue = CsiEncoderSide(load())
        self.gnb = CsiDecoderSide(load(), self._update_coder())
        self.config = self.ue.codec.config
        self.lmbda = float(online.lmbda or _checkpoint_lmbda(checkpoint))
        self.reports_per_update = max(float(reports_per_update), 1.0)
        self._trainer = None
        self.work = None
        self.version = 0                                  # of the gNB's decoder side
        self._undecoded: dict[int, int] = {}              # version -> reports not decoded yet
        self._old_decoders: dict[int, list[np.ndarray]] = {}   # version -> its decoder-side weights
        if self.scheme != "none":
            self.work = load()
            self._trainer = self._make_trainer()

    # -- the two ends ------------------------------------------------------------------------------
    def report(self, x: np.ndarray) -> CsiReport:
        x = np.asarray(x, np.float32)
        if x.ndim != 4:
            raise ValueError(f"x must be [n, ant, sc, 2], got shape {x.shape}")
        coded, est, x_expected = self.ue.report(x, reconstruct=True)
        self._undecoded[self.version] = self._undecoded.get(self.version, 0) + 1
        return CsiReport(coded.data, coded.bits, float(np.sum(est)), x, x_expected, version=self.version)

    def decode(self, report: CsiReport) -> np.ndarray:
        """gNB: decode with the decoder side of the report's version (the current one, or an old
        one kept for reports that straddled an update)."""
        if not report.pending:
            raise ValueError("this report has been decoded already")
        v, n = report.version, len(report.x)
        if v == self.version:
            x_hat = self.gnb.decode_reports(report.data, n)
        else:
            current = self.gnb.decoder_side_weights()
            _assign(self.gnb.codec.decoder_side_variables, self._old_decoders[v])
            self.gnb.refresh()
            try:
                x_hat = self.gnb.decode_reports(report.data, n)
            finally:
                _assign(self.gnb.codec.decoder_side_variables, current)
                self.gnb.refresh()
        self._undecoded[v] -= 1
        if self._undecoded[v] == 0:
            del self._undecoded[v]
            self._old_decoders.pop(v, None)
        report.pending = False
        return x_hat

    def _new_version(self) -> None:
        """The gNB's decoder side is about to change: keep the old one while reports need it."""
        if self._undecoded.get(self.version):
            self._old_decoders[self.version] = self.gnb.decoder_side_weights()
        self.version += 1

    # -- fine-tuning -------------------------------------------------------------------------------
    def _update_coder(self):
        if self.scheme != "full_model":
            return None
        from models.csi_codec.update_coder import make_update_coder

        coder = make_update_coder(self.online.update)
        self._quantizer, self._prior = coder.quantizer, coder.prior
        return coder

    def _make_trainer(self):
        from models.csi_codec.train import FullModelFineTuner, RdTrainer

        lr = self.online.learning_rate
        if self.scheme == "encoder_only":
            return RdTrainer(self.work, self.lmbda, lr, variables=self.work.encoder_side_variables)
        if self.scheme == "genie":
            return RdTrainer(self.work, self.lmbda, lr)
        if self.scheme == "full_model":
            u = self.online.update
            beta = u.beta if u.rate_term else 0.0
            return FullModelFineTuner(self.work, self._quantizer, self._prior, self.lmbda, beta,
                                      self.reports_per_update, lr)
        from models.csi_codec.translation import TranslationFineTuner

        return TranslationFineTuner(self.work, self.lmbda, lr)

    def compute_us(self, steps: int, batch: int) -> int:
        flops = 3.0 * flops_per_report(self.config) * steps * batch
        return int(math.ceil(flops / (self.online.ue_gflops * 1e9) * 1e6))

    def _rd(self, codec, x: np.ndarray) -> float:
        from models.csi_codec.model import rd_loss

        return float(rd_loss(codec, x, self.lmbda, training=False)["loss"])

    def fine_tune(self, x: np.ndarray) -> Update | None:
        """Fine-tune ``work`` on x [n, ant, sc, 2] (the UE's recent CSI); returns the update (its
        ``payload``, if any, is the coded decoder update for the gNB; ``trigger`` is left to the caller)."""
        if self.scheme == "none":
            return None
        x = np.asarray(x, np.float32)
        steps, batch = self.online.steps, self.online.batch
        before = self._rd(self.ue.codec, x)    # the UE's decoder side equals the gNB's between updates
        if self.scheme == "full_model":
            self._trainer.run(x, self.gnb.decoder_side_weights(), steps, batch, self.rng)
        else:
            self._trainer.reset_optimizer()
            self._trainer.run(x, steps, batch, self.rng)
        data, bits, est, nonzero, nw = b"", 0, 0.0, 0, 0
        work_dec = self.work.decoder_side_variables
        if self.scheme == "full_model":
            coded = self.gnb.update_coder.encode(self.gnb.decoder_side_weights(), [v.numpy() for v in work_dec])
            for v, q in zip(work_dec, coded.quantized):        # the UE keeps what the gNB will rebuild
                v.assign(q)
            data, bits, est, nonzero, nw = coded.data, coded.bits, coded.estimated_bits, coded.nonzero, coded.num_weights
        after = self._rd(self.work, x)
        enc = [v.numpy() for v in self.work.encoder_side_variables]
        dec = [v.numpy() for v in work_dec]
        scheme = self.scheme

        def apply() -> dict:
            if scheme != "encoder_only":
                self._new_version()
            if scheme == "full_model":
                self.gnb.apply_update(data)
            elif scheme in ("genie", "translation"):
                _assign(self.gnb.codec.decoder_side_variables, dec)
                self.gnb.refresh()
            _assign(self.ue.codec.encoder_side_variables, enc)
            if scheme != "encoder_only":
                _assign(self.ue.codec.decoder_side_variables, dec)
                self.ue.gnb_decoder_side = [d.copy() for d in dec]
            self.ue.refresh()
            return {}

        state = sum(v.numpy().nbytes for v in self._trainer.variables) * 3     # weights + Adam moments
        return Update(model="conv_csi", trigger="", trigger_value=math.nan, compute_us=self.compute_us(steps, batch),
                      apply=apply, update_bits=bits, payload=data or None, state_bytes=state, loss_before=before,
                      loss_after=after, variant=scheme, update_bits_estimated=est, update_nonzero=nonzero,
                      update_weights=nw)


def _assign(variables, values) -> None:
    for v, w in zip(variables, values):
        v.assign(w)


def _checkpoint_lmbda(checkpoint: str) -> float:
    lmbda = (read_checkpoint_config(checkpoint, "conv_csi").training or {}).get("lmbda")
    if lmbda is None:
        raise ValueError(f"{checkpoint}: no training lambda recorded; set online.lmbda")
    return float(lmbda)
