"""Matrix products with int4 or int8 weights and bf16 activations, through torch's CPU kernels.

``torch.ops.aten._weight_int4pack_mm_for_cpu`` (group-wise int4, tinygemm's convention, see ``tfdojo.infer.quant``)
and ``torch.ops.aten._weight_int8pack_mm`` (int8 per output channel) unpack the weights inside the product, so a
decode step reads 4 or 8 bits per weight. Both are used with bf16 activations only: with fp32 activations they
take a path ~30x slower. The kernels' limits, checked here rather than met as a crash or a wrong answer:

- int4: the output width must be a multiple of 16 and the input width a multiple of the group;
- int8: the input width must be a multiple of 8 (torch 2.13 reads out of bounds otherwise: wrong sums, or a crash).

Scales and zeros go to the kernels in bf16 (their only dtype with bf16 activations), which rounds each to 8
significant bits; ``tests/infer/test_quant.py`` bounds the products against an fp64 matmul of the codes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.infer.quant import Int4Codes, Int8Codes

ACTIVATION_DTYPE = torch.bfloat16


def int_kernels_available() -> bool:
    """Whether this torch build has the CPU int4 and int8 weight-only kernels."""
    aten = torch.ops.aten
    return all(hasattr(aten, op) for op in ("_convert_weight_to_int4pack_for_cpu", "_weight_int8pack_mm"))


class Int4Linear:
    """y = x · Wᵀ with W held as packed int4 codes; x bf16 (..., in) -> y bf16 (..., out)."""

    def __init__(self, codes: Int4Codes, bias: Tensor | None = None) -> None:
        out, cols = codes.codes.shape
        if out % 16 or cols % codes.group:
            raise ConfigError(
                f"the int4 kernel needs an output width divisible by 16 and an input width divisible by the group "
                f"({codes.group}); got a ({out}, {cols}) matrix: use quant='int8' or no quantization for this model"
            )
        self.out_features, self.group = out, codes.group
        self.packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes.codes.to(torch.int32), 1)  # (out, in/2)
        scale_zero = torch.stack((codes.scale, codes.zero), dim=-1)  # (out, groups, 2)
        self.scale_zero = scale_zero.transpose(0, 1).contiguous().to(ACTIVATION_DTYPE)  # (groups, out, 2)
        self.bias = None if bias is None else bias.detach().to(ACTIVATION_DTYPE)

    def __call__(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, x.shape[-1])  # (N, in)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(rows, self.packed, self.group, self.scale_zero)  # (N, out)
        y = y.view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias


class Int8Linear:
    """y = x · Wᵀ with W held as int8 codes and a scale per output row; x bf16 (..., in) -> y bf16 (..., out)."""

    def __init__(self, codes: Int8Codes, bias: Tensor | None = None) -> None:
        out, cols = codes.codes.shape
        if cols % 8:
            raise ConfigError(
                f"the int8 kernel needs an input width divisible by 8; got a ({out}, {cols}) matrix: "
                f"load this model without quantization"
            )
        self.out_features = out
        self.codes = codes.codes.contiguous()  # (out, in) int8
        self.scale = codes.scale.to(ACTIVATION_DTYPE)  # (out,)
        self.bias = None if bias is None else bias.detach().to(ACTIVATION_DTYPE)

    def __call__(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, x.shape[-1])  # (N, in)
        y = torch.ops.aten._weight_int8pack_mm(rows, self.codes, self.scale).view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias
