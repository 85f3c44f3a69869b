"""Matrix products with int4 or int8 weights and bf16 activations, through torch's CPU kernels.

``torch.ops.aten._weight_int4pack_mm_for_cpu`` (group-wise int4, tinygemm's convention, see ``tfdojo.infer.quant``)
and ``torch.ops.aten._weight_int8pack_mm`` (int8 per output channel) unpack the weights inside the product, so a
decode step reads 4 or 8 bits per weight. Both are used with bf16 activations only: with fp32 activations they
take a path ~30x slower. The kernels' limits, checked here rather than met as a crash or a wrong answer:

- int4: the output width must be a multiple of 16 and the input width a multiple of the group;
- int8: the input width must be a multiple of 8 (torch 2.13 reads out of bounds otherwise: wrong sums, or a crash).

Scales and zeros go to the kernels in bf16 (their only dtype with bf16 activations), which rounds each to 8
significant bits; ``tests/infer/test_quant.py`` bounds the products against an fp64 matmul of the codes.

One-row products (a batch-1 decode step) go to our own AVX2 kernels (``tfdojo.infer.gemv_kernel``) where they
are built: ggml's int4 x int8 dot product, 3-4x faster than torch's int4 kernel on AVX2 CPUs without bf16
arithmetic (docs/benchmarks.md). They take x rounded to int8 per block of 32 and int4 scales and lows in fp16.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.infer import gemv_kernel
from tfdojo.infer.quant import INT4_MIDPOINT, Int4Codes, Int8Codes

ACTIVATION_DTYPE = torch.bfloat16
# a one-row product y (out,) = kernel(x (in,), *tensors, **arguments): (kernel, tensors, arguments)
RowParts = tuple[Callable[..., Tensor], tuple[Tensor, ...], dict[str, int]]


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
        self.one_row = _one_row_int4(codes)  # (packed, scale, low) for our kernel, or None

    def __call__(self, x: Tensor) -> Tensor:
        if self.one_row is not None and x.numel() == x.shape[-1] and x.dtype == ACTIVATION_DTYPE:
            y = _int4_gemv(x.reshape(-1), *self.one_row).view(*x.shape[:-1], self.out_features)
        else:
            rows = x.reshape(-1, x.shape[-1])  # (N, in)
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(rows, self.packed, self.group, self.scale_zero)  # (N, out)
            y = y.view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

    def row_parts(self) -> RowParts:
        """The kernel of a one-row product, the tensors it reads and its other arguments (``layer_stack``)."""
        if self.one_row is not None:
            return _int4_gemv, self.one_row, {}
        return _torch_int4_row, (self.packed, self.scale_zero), {"group": self.group}

    def rebind_row_parts(self, tensors: tuple[Tensor, ...]) -> None:
        """Read the one-row product's tensors from ``tensors`` (equal values, e.g. views of a stack) from now on."""
        if self.one_row is not None:
            self.one_row = tensors
        else:
            self.packed, self.scale_zero = tensors


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
        usable = cols % gemv_kernel.BLOCK == 0 and gemv_kernel.library() is not None
        self.one_row = (self.codes, codes.scale.float().contiguous()) if usable else None  # for our kernel

    def __call__(self, x: Tensor) -> Tensor:
        if self.one_row is not None and x.numel() == x.shape[-1] and x.dtype == ACTIVATION_DTYPE:
            y = _int8_gemv(x.reshape(-1), *self.one_row).view(*x.shape[:-1], self.out_features)
        else:
            rows = x.reshape(-1, x.shape[-1])  # (N, in)
            y = torch.ops.aten._weight_int8pack_mm(rows, self.codes, self.scale).view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias

    def row_parts(self) -> RowParts:
        """The kernel of a one-row product, the tensors it reads and its other arguments (``layer_stack``)."""
        if self.one_row is not None:
            return _int8_gemv, self.one_row, {}
        return _torch_int8_row, (self.codes, self.scale), {}

    def rebind_row_parts(self, tensors: tuple[Tensor, ...]) -> None:
        """Read the one-row product's tensors from ``tensors`` (equal values, e.g. views of a stack) from now on."""
        if self.one_row is not None:
            self.one_row = tensors
            self.codes = tensors[0]  # the codes are shared with torch's path for a few rows
        else:
            self.codes, self.scale = tensors


def _one_row_int4(codes: Int4Codes) -> tuple[Tensor, Tensor, Tensor] | None:
    """Codes in our kernel's layout (nibbles; fp16 scale and low = z - 8s), or None where it does not apply."""
    if codes.group != gemv_kernel.BLOCK or gemv_kernel.library() is None:
        return None
    scale, low = codes.scale.float(), codes.zero.float() - INT4_MIDPOINT * codes.scale.float()
    if not bool(torch.isfinite(scale.half()).all() and torch.isfinite(low.half()).all()):
        return None  # beyond fp16's range: torch's kernel (bf16 scales) handles it
    return gemv_kernel.pack_int4(codes.codes), scale.half().contiguous(), low.half().contiguous()


# One-row products y (out,) of x (in,). ``layer`` picks a matrix of stacked (L, ...) weights (``layer_stack``):
# our kernels offset a pointer, so a compiled graph creates no view tensor per layer; torch's take a view.


def _int4_gemv(x: Tensor, packed: Tensor, scale: Tensor, low: Tensor, layer: int = 0) -> Tensor:
    # inside torch.compile the kernel is an opaque operator; eagerly the direct call skips ~4 µs of dispatch
    if torch.compiler.is_compiling():
        return torch.ops.tfdojo.q4_gemv(x, packed, scale, low, layer)
    return gemv_kernel.q4_gemv(x, packed, scale, low, layer)


def _int8_gemv(x: Tensor, codes: Tensor, scale: Tensor, layer: int = 0) -> Tensor:
    if torch.compiler.is_compiling():
        return torch.ops.tfdojo.q8_gemv(x, codes, scale, layer)
    return gemv_kernel.q8_gemv(x, codes, scale, layer)


def _torch_int4_row(x: Tensor, packed: Tensor, scale_zero: Tensor, layer: int = 0, *, group: int) -> Tensor:
    if packed.dim() == 3:  # stacked: (L, out, in/2) and (L, groups, out, 2)
        packed, scale_zero = packed[layer], scale_zero[layer]
    return torch.ops.aten._weight_int4pack_mm_for_cpu(x.view(1, -1), packed, group, scale_zero).view(-1)


def _torch_int8_row(x: Tensor, codes: Tensor, scale: Tensor, layer: int = 0) -> Tensor:
    if codes.dim() == 3:  # stacked: (L, out, in) and (L, out)
        codes, scale = codes[layer], scale[layer]
    return torch.ops.aten._weight_int8pack_mm(x.view(1, -1), codes, scale).view(-1)
