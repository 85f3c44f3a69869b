"""Quantized key/value cache: int8 or int4 codes with one scale and one offset per token and head.

Each cached vector x (one token, one key/value head, D channels) is stored as codes q = round((x - m) / s) with
m = min(x), s = (max(x) - min(x)) / (2^bits - 1), and read back as q·s + m (asymmetric min-max quantization, as
in KIVI, Liu et al., 2024, which quantizes keys per channel; per token keeps the cache append-only). int4 codes
are packed two to a byte. Memory per vector: D·bits/8 bytes + 2 scalars, against D·4 bytes in fp32 (D = 64:
int8 72 B, int4 40 B, fp32 256 B).

Reads dequantize the whole view for the attention that follows, so this trades compute for memory; the errors
it adds are measured in ``tests/infer/test_quant_cache.py`` (logits) and on SmolLM2 (perplexity).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.infer.cache import CacheFactory, CacheGeometry, check_room, check_sizes


def quantize(x: Tensor, bits: int) -> tuple[Tensor, Tensor, Tensor]:
    """x (..., D) -> uint8 codes (..., D) for int8 or (..., D/2) packed for int4, scale and offset (..., 1).

    The arithmetic runs in fp32 whatever the dtype of x.
    """
    x = x.float()
    low, high = x.amin(dim=-1, keepdim=True), x.amax(dim=-1, keepdim=True)
    levels = 2**bits - 1
    scale = ((high - low) / levels).clamp(min=torch.finfo(x.dtype).tiny)
    codes = ((x - low) / scale).round().clamp(0, levels).to(torch.uint8)
    if bits == 4:
        codes = codes[..., 0::2] | (codes[..., 1::2] << 4)  # (..., D/2): even channel low nibble, odd high
    return codes, scale, low


def dequantize(codes: Tensor, scale: Tensor, low: Tensor, bits: int) -> Tensor:
    """Inverse of :func:`quantize` (up to half a step per channel), in fp32."""
    if bits == 4:
        codes = torch.stack((codes & 0x0F, codes >> 4), dim=-1).flatten(-2)  # (..., D) unpacked in channel order
    return codes.float() * scale.float() + low.float()


class QuantizedKVCache:
    """Implements ``tfdojo.nn.kv.KVCache`` over preallocated code, scale and offset buffers (int8 or int4)."""

    def __init__(
        self,
        geometry: CacheGeometry,
        batch: int,
        max_len: int,
        bits: int = 8,
    ) -> None:
        g = geometry
        check_sizes(batch=batch, max_len=max_len)
        if bits not in (4, 8):
            raise ConfigError(f"a quantized cache stores 8 or 4 bits per value, got {bits}")
        if bits == 4 and g.head_dim % 2:
            raise ConfigError(f"int4 packs two channels per byte and needs an even head_dim, got {g.head_dim}")
        shape = (g.n_layers, batch, g.n_kv_heads, max_len)
        width = g.head_dim * bits // 8
        self.codes = [torch.zeros(*shape, width, dtype=torch.uint8, device=g.device) for _ in "kv"]
        self.scales = [torch.zeros(*shape, 1, dtype=g.dtype, device=g.device) for _ in "kv"]
        self.offsets = [torch.zeros(*shape, 1, dtype=g.dtype, device=g.device) for _ in "kv"]
        self.bits, self.max_len = bits, max_len
        self._length = 0

    @classmethod
    def factory(cls, bits: int = 8) -> CacheFactory:
        """A ``generate(..., cache=...)`` factory for this cache at ``bits`` bits."""

        def build(model: nn.Module, batch: int, max_len: int) -> QuantizedKVCache:
            return cls(CacheGeometry.of(model), batch, max_len, bits)

        return build

    @property
    def length(self) -> int:
        """Positions already stored and committed by :meth:`advance`."""
        return self._length

    def bytes_per_position(self) -> int:
        """Bytes one position takes over every layer and head, keys and values, scales and offsets included."""
        return sum(t[:, 0, :, 0].nbytes for t in (*self.codes, *self.scales, *self.offsets))  # (L, Hkv, ·) each

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Quantize and store k, v (B, Hkv, T, D); return the dequantized views (B, Hkv, length + T, D)."""
        end = check_room(self.max_len, self._length, k.shape[2])
        views = []
        for i, x in enumerate((k, v)):
            codes, scale, low = quantize(x, self.bits)
            self.codes[i][layer, :, :, self._length : end] = codes
            self.scales[i][layer, :, :, self._length : end] = scale
            self.offsets[i][layer, :, :, self._length : end] = low
            stored = (self.codes[i][layer, :, :, :end], self.scales[i][layer, :, :, :end])
            views.append(dequantize(*stored, self.offsets[i][layer, :, :, :end], self.bits).to(x.dtype))
        return views[0], views[1]

    def advance(self, t: int) -> None:
        """Commit the t positions every layer has just written."""
        self._length += t
