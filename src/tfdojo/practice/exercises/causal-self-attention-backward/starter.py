"""Gradients of softmax attention with respect to q, k and v, derived by hand."""

from torch import Tensor


def attention_backward(
    q: Tensor, k: Tensor, v: Tensor, grad_out: Tensor, *, causal: bool = True, scale: float | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """q (B, H, T, D), k/v (B, H, S, D), grad_out (B, H, T, D) -> (dq, dk, dv) of O = softmax(q kᵀ · scale) v."""
    raise NotImplementedError
