"""Range coding of quantised CSI latents with ``constriction`` (real bitstreams).

A stream holds one or more CSI reports. Symbol order inside a stream: report by report, and
inside a report channel by channel, all height x width symbols of a channel coded as i.i.d.
draws from that channel's categorical table (the density is fully factorised, so this is the
exact model, and constriction's i.i.d. path is its fastest). After each channel block come the
payloads of the block's escapes, in block order, so the gNB can decode a stream report by
report without any side information but the number of reports in it.

Escapes: an integer outside a channel's table range is sent as the escape symbol followed by
a sign (uniform over 2) and the excess e >= 0 beyond the range in Elias-gamma form: the bit
length n of e + 1 (uniform over 32) and then the n - 1 low bits of e + 1 in chunks of at most
16 bits (uniform), written by hand because constriction has no unbounded integer model.

Bytes: constriction's 32-bit words, little-endian. A stream costs whole words, so coded bits
are a multiple of 32; the word padding and the coder's flush make the ~16-48 bits by which a
stream exceeds its ideal -log2 p.
"""
from __future__ import annotations

from dataclasses import dataclass

import constriction
import numpy as np

from models.csi_codec.entropy import ProbabilityTables

_WORD = np.dtype("<u4")
_CHUNK_BITS = 16
_LENGTH_ALPHABET = 32                   # Elias-gamma bit length n of e + 1, n in 1..32


def words_to_bytes(words: np.ndarray) -> bytes:
    return np.asarray(words, _WORD).tobytes()


def bytes_to_words(data: bytes) -> np.ndarray:
    if len(data) % 4:
        raise ValueError(f"a range-coded stream is a whole number of 32-bit words, got {len(data)} bytes")
    return np.frombuffer(data, _WORD).astype(np.uint32)


def categorical(counts: np.ndarray) -> constriction.stream.model.Categorical:
    """A constriction model for an integer frequency table (see ``entropy.quantize_pmf``).

    The counts sum to 2**precision with precision <= 24, so the probabilities are exact dyadic
    floats that constriction's 24-bit fixed point holds without loss; UE and gNB build the same
    model from the same integers."""
    counts = np.asarray(counts, np.float64)
    return constriction.stream.model.Categorical(counts / counts.sum(), perfect=False)


_SIGN = constriction.stream.model.Uniform(2)
_LENGTH = constriction.stream.model.Uniform(_LENGTH_ALPHABET)


def _encode_excess(enc, values: np.ndarray, lo: int, hi: int) -> None:
    """Payloads of escaped integers ``values`` (each outside [lo, hi])."""
    for v in values.tolist():
        above = v > hi
        e = (v - hi - 1) if above else (lo - v - 1)
        m = e + 1
        n = m.bit_length()
        if n > _LENGTH_ALPHABET:
            raise OverflowError(f"latent value {v} is too far outside the table range [{lo}, {hi}]")
        enc.encode(int(above), _SIGN)
        enc.encode(n - 1, _LENGTH)
        rest, bits = m - (1 << (n - 1)), n - 1
        while bits > 0:
            k = min(bits, _CHUNK_BITS)
            bits -= k
            enc.encode((rest >> bits) & ((1 << k) - 1), constriction.stream.model.Uniform(1 << k))


def _decode_excess(dec, count: int, lo: int, hi: int) -> np.ndarray:
    out = np.empty(count, np.int64)
    for i in range(count):
        above = int(dec.decode(_SIGN))
        n = int(dec.decode(_LENGTH)) + 1
        m, bits = 1, n - 1
        while bits > 0:
            k = min(bits, _CHUNK_BITS)
            bits -= k
            m = (m << k) | int(dec.decode(constriction.stream.model.Uniform(1 << k)))
        e = m - 1
        out[i] = hi + 1 + e if above else lo - 1 - e
    return out


@dataclass
class CodedLatents:
    """A coded stream: ``data`` (bytes on the feedback link), its size, and how many reports."""
    data: bytes
    num_reports: int

    @property
    def bits(self) -> int:
        return 8 * len(self.data)


class LatentCoder:
    """Range coder for integer latents [reports, height, width, channels] under fixed tables.

    encode:        symbols [reports, h, w, channels] int -> CodedLatents (one stream)
    encode_each:   symbols [reports, h, w, channels] int -> list of CodedLatents (one per report)
    decode:        CodedLatents | bytes, num_reports -> symbols [reports, h, w, channels] int32
    """

    def __init__(self, tables: ProbabilityTables, latent_shape: tuple[int, int]):
        self.tables = tables
        self.latent_shape = (int(latent_shape[0]), int(latent_shape[1]))
        self.models = [categorical(c) for c in tables.counts]
        self.lo = [int(m) for m in tables.minima]
        self.size = [len(c) - 1 for c in tables.counts]               # in-range alphabet, escape = size

    def _check(self, symbols: np.ndarray) -> np.ndarray:
        symbols = np.asarray(symbols)
        expected = (*self.latent_shape, self.tables.channels)
        if symbols.ndim != 4 or symbols.shape[1:] != expected:
            raise ValueError(f"latent symbols must be [reports, {expected[0]}, {expected[1]}, {expected[2]}], "
                             f"got shape {symbols.shape}")
        if not np.issubdtype(symbols.dtype, np.integer):
            raise ValueError(f"latent symbols must be integers (rounded latents), got dtype {symbols.dtype}")
        return symbols.astype(np.int64)

    def _encode_into(self, enc, symbols: np.ndarray) -> None:
        for report in symbols:
            for c in range(self.tables.channels):
                v = report[..., c].reshape(-1)
                idx = v - self.lo[c]
                esc = (idx < 0) | (idx >= self.size[c])
                enc.encode(np.where(esc, self.size[c], idx).astype(np.int32), self.models[c])
                if esc.any():
                    _encode_excess(enc, v[esc], self.lo[c], self.lo[c] + self.size[c] - 1)

    def encode(self, symbols: np.ndarray) -> CodedLatents:
        symbols = self._check(symbols)
        enc = constriction.stream.queue.RangeEncoder()
        self._encode_into(enc, symbols)
        return CodedLatents(words_to_bytes(enc.get_compressed()), len(symbols))

    def encode_each(self, symbols: np.ndarray) -> list[CodedLatents]:
        symbols = self._check(symbols)
        return [self.encode(symbols[i:i + 1]) for i in range(len(symbols))]

    def decode(self, coded: CodedLatents | bytes, num_reports: int | None = None) -> np.ndarray:
        if isinstance(coded, CodedLatents):
            data, num_reports = coded.data, coded.num_reports if num_reports is None else num_reports
        else:
            data = coded
        if num_reports is None or num_reports < 0:
            raise ValueError(f"num_reports must be a non-negative int, got {num_reports}")
        dec = constriction.stream.queue.RangeDecoder(bytes_to_words(data))
        h, w = self.latent_shape
        out = np.empty((num_reports, h * w, self.tables.channels), np.int64)
        for r in range(num_reports):
            for c in range(self.tables.channels):
                idx = dec.decode(self.models[c], h * w).astype(np.int64)
                esc = idx == self.size[c]
                v = idx + self.lo[c]
                if esc.any():
                    v[esc] = _decode_excess(dec, int(esc.sum()), self.lo[c], self.lo[c] + self.size[c] - 1)
                out[r, :, c] = v
        return out.reshape(num_reports, h, w, self.tables.channels).astype(np.int32)
