"""Clip every gradient together by their global norm, in place."""

import math
from collections.abc import Iterable

import torch
from torch import Tensor


def clip_by_global_norm(parameters: Iterable[Tensor], max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale all .grad tensors by min(1, max_norm / (total_norm + 1e-6)) in place; return the pre-clip norm."""
    grads = [p.grad for p in parameters if p.grad is not None]  # a list: the iterable may be a one-shot generator
    if not grads:
        return torch.tensor(0.0)
    if math.isinf(norm_type):
        total = torch.stack([g.detach().abs().max().float() for g in grads]).max()
    else:
        per_tensor = torch.stack([torch.linalg.vector_norm(g.detach().float(), norm_type) for g in grads])
        total = torch.linalg.vector_norm(per_tensor, norm_type)  # the norm of the norms is the global norm
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1:
        for g in grads:
            g.mul_(coefficient.to(g.dtype))
    return total
