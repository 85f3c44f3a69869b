"""Mutant: always multiplies by max_norm / norm, so small gradients are scaled up to max_norm."""

from collections.abc import Iterable

import torch
from torch import Tensor


def clip_by_global_norm(parameters: Iterable[Tensor], max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Forgets the clamp at 1."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads]), norm_type)
    for g in grads:
        g.mul_(max_norm / (total + 1e-6))
    return total
