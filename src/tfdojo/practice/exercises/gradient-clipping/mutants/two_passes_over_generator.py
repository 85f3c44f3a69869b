"""Mutant: walks `parameters` twice; a generator is empty the second time, so nothing gets clipped."""

from collections.abc import Iterable

import torch
from torch import Tensor


def clip_by_global_norm(parameters: Iterable[Tensor], max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Right maths, one-shot iterables mishandled."""
    norms = [torch.linalg.vector_norm(p.grad, norm_type) for p in parameters if p.grad is not None]
    if not norms:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack(norms), norm_type)
    coefficient = max_norm / (total + 1e-6)
    if coefficient < 1:
        for p in parameters:
            if p.grad is not None:
                p.grad.mul_(coefficient)
    return total
