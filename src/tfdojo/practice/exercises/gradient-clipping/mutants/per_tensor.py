"""Mutant: clips each gradient by its own norm, which changes the update's direction."""

from collections.abc import Iterable

import torch
from torch import Tensor


def clip_by_global_norm(parameters: Iterable[Tensor], max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Per-tensor clipping; returns the global norm."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norms = [torch.linalg.vector_norm(g, norm_type) for g in grads]
    for g, n in zip(grads, norms, strict=True):
        coefficient = max_norm / (n + 1e-6)
        if coefficient < 1:
            g.mul_(coefficient)
    return torch.linalg.vector_norm(torch.stack(norms), norm_type)
