"""Bytes of model state this process actually holds: what ``calc``'s ZeRO arithmetic predicts per rank."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributed.tensor import DTensor


def _local(t: Tensor) -> Tensor:
    return t.to_local() if isinstance(t, DTensor) else t


def local_state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Weights, gradients and optimizer state resident on this rank (shards only, tied weights once)."""
    params = list({id(p): p for p in model.parameters()}.values())
    state = [v for s in optimizer.state.values() for k, v in s.items() if isinstance(v, Tensor) and k != "step"]
    return {
        "weights": sum(_local(p).nbytes for p in params),
        "gradients": sum(_local(p.grad).nbytes for p in params if p.grad is not None),
        "optimizer": sum(_local(v).nbytes for v in state),
    }
