"""Symmetric per-output-channel int8 quantization of a weight matrix, and a linear layer that uses it."""

from torch import Tensor


def quantize_int8(w: Tensor) -> tuple[Tensor, Tensor]:
    """w (out, in) -> q int8 (out, in), scale float32 (out, 1) with scale = max|row| / 127."""
    raise NotImplementedError


def dequantize_int8(q: Tensor, scale: Tensor) -> Tensor:
    """q int8 (out, in), scale (out, 1) -> float32 (out, in)."""
    raise NotImplementedError


def int8_linear(x: Tensor, q: Tensor, scale: Tensor) -> Tensor:
    """x (..., in) -> (..., out) = (x @ qᵀ) · scaleᵀ, the scale applied to the output columns."""
    raise NotImplementedError
