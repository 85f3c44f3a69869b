"""Weight-only integer codes for decoding: int4 group-wise (asymmetric) and int8 per output channel (symmetric).

A decode step reads every weight once per token, so its time is the bytes of the weights over the memory
bandwidth: int4 reads a quarter of bf16's bytes, int8 half. The codes follow the arithmetic of torch's CPU kernels
(``tfdojo.infer.int_linear``) — the int4 convention is tinygemm's, as in GPTQ/AWQ-style group quantization
(Frantar et al., 2022; Lin et al., 2023) with a float zero point:

    int4, per row r and group g of ``group`` input columns:  w = (q - 8) · s[r, g] + z[r, g],   q in 0..15
    int8, per row r:                                          w = q · s[r],                     q in -127..127

GGUF's Q4_1 blocks (32 values, w = d · q + m) are this int4 form exactly, with s = d and z = m + 8d, and Q4_0
blocks (w = d · (q - 8)) with s = d and z = 0 (``tfdojo.weights.gguf_int4``), so no requantization is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tfdojo.errors import ConfigError

INT4_MIDPOINT = 8  # the kernels subtract it from every 4-bit code before scaling


@dataclass(frozen=True)
class Int4Codes:
    """A matrix (out, in) as 4-bit codes (uint8, 0..15) with a scale and a zero per row and group of columns."""

    codes: Tensor  # (out, in) uint8
    scale: Tensor  # (out, in / group) float
    zero: Tensor  # (out, in / group) float
    group: int

    def dequantize(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """The matrix the codes stand for, (out, in), computed in ``dtype``."""
        out, cols = self.codes.shape
        q = self.codes.to(dtype).view(out, cols // self.group, self.group)  # (out, groups, group)
        w = (q - INT4_MIDPOINT) * self.scale.to(dtype)[..., None] + self.zero.to(dtype)[..., None]
        return w.reshape(out, cols)

    def rows(self, index: Tensor) -> Int4Codes:
        """The codes of the rows ``index`` (a permutation or selection of output rows)."""
        return Int4Codes(self.codes[index], self.scale[index], self.zero[index], self.group)


@dataclass(frozen=True)
class Int8Codes:
    """A matrix (out, in) as int8 codes with one scale per output row."""

    codes: Tensor  # (out, in) int8
    scale: Tensor  # (out,) float

    def dequantize(self, dtype: torch.dtype = torch.float64) -> Tensor:
        """The matrix the codes stand for, (out, in), computed in ``dtype``."""
        return self.codes.to(dtype) * self.scale.to(dtype)[:, None]


def stack_rows(parts: list[Int4Codes]) -> Int4Codes:
    """Several int4 matrices with the same input width and group, stacked along the output rows (fused QKV)."""
    if len({p.group for p in parts}) != 1:
        raise ConfigError(f"cannot fuse int4 matrices of different group sizes {[p.group for p in parts]}")
    return Int4Codes(
        torch.cat([p.codes for p in parts]),
        torch.cat([p.scale for p in parts]),
        torch.cat([p.zero for p in parts]),
        parts[0].group,
    )


def quantize_int4(weight: Tensor, group: int = 32) -> Int4Codes:
    """Round-to-nearest int4 codes of ``weight`` (out, in): each group's [min, max] spread over the 16 levels."""
    out, cols = weight.shape
    if cols % group:
        raise ConfigError(f"int4 groups of {group} must divide the input width {cols}; pick a group that divides it")
    w = weight.detach().float().reshape(out, cols // group, group)  # (out, groups, group)
    low, high = w.amin(dim=-1), w.amax(dim=-1)  # (out, groups)
    scale = ((high - low) / 15).clamp_min(torch.finfo(torch.float32).tiny)  # a constant group gets any scale
    q = ((w - low[..., None]) / scale[..., None]).round_().clamp_(0, 15)
    zero = low + INT4_MIDPOINT * scale  # w = (q - 8)·s + z  with  z = low + 8·s
    return Int4Codes(q.to(torch.uint8).reshape(out, cols), scale, zero, group)


def quantize_int8(weight: Tensor) -> Int8Codes:
    """Symmetric round-to-nearest int8 codes of ``weight`` (out, in), one scale (absmax / 127) per output row."""
    w = weight.detach().float()
    scale = (w.abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.float32).tiny)  # (out,)
    q = (w / scale[:, None]).round_().clamp_(-127, 127)
    return Int8Codes(q.to(torch.int8), scale)
