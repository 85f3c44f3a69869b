"""Norms of parameters and gradients that may be DTensors (sharded by FSDP2 or tensor parallelism)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributed.tensor import DTensor


def full_norm(t: Tensor) -> Tensor:
    """The L2 norm of the whole tensor (a plain scalar) even when ``t`` is a shard of a DTensor."""
    n = torch.linalg.vector_norm(t.detach().float())
    return n.full_tensor() if isinstance(n, DTensor) else n


def clip_gradients(parameters: Sequence[torch.nn.Parameter], max_norm: float | None) -> float:
    """Global L2 norm of the gradients before clipping; scales them to ``max_norm`` when one is set.

    The same rule as ``torch.nn.utils.clip_grad_norm_`` (coefficient max_norm / (norm + 1e-6), at most 1), but
    it accepts a mix of plain and DTensor gradients, as a tensor-parallel model has.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.stack([full_norm(g) for g in grads]).norm()
    if max_norm is not None:
        coefficient = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        for g in grads:
            g.mul_(coefficient.to(g.dtype))
    return float(total)
