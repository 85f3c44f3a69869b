"""Gradients of LayerNorm with respect to its input, weight and bias, derived by hand."""

from torch import Tensor


def layer_norm_backward(
    x: Tensor, weight: Tensor, grad_out: Tensor, eps: float = 1e-5
) -> tuple[Tensor, Tensor, Tensor]:
    """x (..., D), weight (D,), grad_out (..., D) -> (dx (..., D), dweight (D,), dbias (D,))."""
    raise NotImplementedError
