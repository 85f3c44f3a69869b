"""What this process holds: model-state bytes (``calc``'s ZeRO arithmetic per rank), norm and dropout inputs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributed._functional_collectives import AsyncCollectiveTensor
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
    """What each norm received in its first forward call (see :func:`module_inputs`)."""
    with module_inputs(model, (LayerNorm, RMSNorm)) as seen:
        yield seen


@contextmanager
def dropout_inputs(model: nn.Module) -> Iterator[dict[str, dict[str, Any]]]:
    """What each dropout layer received in its first forward call; ``saved`` is its mask (see :func:`module_inputs`)."""
    with module_inputs(model, (nn.Dropout,)) as seen:
        yield seen


@contextmanager
def module_inputs(model: nn.Module, kinds: tuple[type, ...]) -> Iterator[dict[str, dict[str, Any]]]:
    """What each module of ``kinds`` received in its first forward call: local (this rank's) shape and bytes,
    DTensor placement, and ``saved``: the bytes of activations autograd kept for that module's backward (this
    rank's part, weights not counted).

    The hooks run after a sequence-parallel module's own input hook, so they see the input the module computes on.
    Measure every kind in one call: saved-tensor hooks do not nest (the innermost context alone sees the tensors).
    """
    seen: dict[str, dict[str, Any]] = {}
    storages: dict[str, set[int]] = {}  # a tensor saved by two operations is kept once
    running: list[str] = []  # the norm whose first forward is under way
    weights = {id(p) for p in model.parameters()}

    def enter(name: str, x: Any) -> None:
        if name not in seen:
            placement = str(x.placements[0]) if isinstance(x, DTensor) else "local"
            local = _local(x)
            seen[name] = {"shape": list(local.shape), "bytes": local.nbytes, "placement": placement, "saved": 0}
            storages[name] = set()
            running.append(name)

    def leave(name: str) -> None:
        if running and running[-1] == name:
            running.pop()

    def pack(t: Tensor) -> Tensor:
        local = _local(t)
        if isinstance(local, AsyncCollectiveTensor):  # a reduce-scatter's result, not yet waited for
            local = local.wait()
        key = local.untyped_storage().data_ptr()
        if running and id(t) not in weights and key not in storages[running[-1]]:
            storages[running[-1]].add(key)
            seen[running[-1]]["saved"] += local.untyped_storage().nbytes()
        return t

    handles = []
    for name, module in model.named_modules():
        if isinstance(module, kinds):
            handles.append(module.register_forward_pre_hook(lambda _, inputs, name=name: enter(name, inputs[0])))
            handles.append(module.register_forward_hook(lambda *_, name=name: leave(name)))
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield seen
    finally:
        for handle in handles:
            handle.remove()
