"""Clip every gradient together by their global norm, in place."""

from collections.abc import Iterable

from torch import Tensor


def clip_by_global_norm(parameters: Iterable[Tensor], max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale all .grad tensors by min(1, max_norm / (total_norm + 1e-6)) in place; return the pre-clip norm."""
    raise NotImplementedError
