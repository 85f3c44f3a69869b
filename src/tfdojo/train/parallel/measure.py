"""What this process actually holds: model-state bytes (``calc``'s ZeRO arithmetic per rank) and norm inputs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributed.tensor import DTensor

from tfdojo.nn.norms import LayerNorm, RMSNorm


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


@contextmanager
def norm_inputs(model: nn.Module) -> Iterator[dict[str, dict[str, Any]]]:
    """What each norm received in its first forward call: local (this rank's) shape and bytes, DTensor placement.

    The hooks run after a sequence-parallel norm's own input hook, so they see the input the norm computes on.
    """
    seen: dict[str, dict[str, Any]] = {}

    def record(name: str, x: Any) -> None:
        placement = str(x.placements[0]) if isinstance(x, DTensor) else "local"
        seen.setdefault(name, {"shape": list(_local(x).shape), "bytes": _local(x).nbytes, "placement": placement})

    handles = [
        module.register_forward_pre_hook(lambda _, inputs, name=name: record(name, inputs[0]))
        for name, module in model.named_modules()
        if isinstance(module, (LayerNorm, RMSNorm))
    ]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()
