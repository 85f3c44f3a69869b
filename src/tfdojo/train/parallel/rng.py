"""Random streams per rank for the regions tensor parallelism shards (Megatron-LM's model-parallel RNG tracker).

The ranks of a tensor-parallel group start from one seed and make the same draws, so a dropout on a replicated
activation (the residual stream of plain TP, the embeddings) drops the same elements on every rank, as it must.
A dropout on a rank's own part (its heads' attention probabilities, or its T/t positions under sequence
parallelism) must draw independently instead, or every rank would drop one pattern at different places.
``per_rank_stream`` gives one module a stream of its own on each rank::

    shared stream ─ draw s ─────────────────────────────────────── restored ─ continues in step on every rank
                            └─ seed (s, rank): the module's random ops ─┘

The seed comes from the shared stream, so activation checkpointing, which restores the shared stream before it
recomputes a block, recomputes the same masks, and a checkpoint's saved RNG state resumes them exactly. Outside
training (eval mode, ``torch.inference_mode``) it draws nothing: evaluation leaves the streams where training left
them, as it does in one process.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tfdojo.nn.dropout import dropping

_MAX_RANKS = 1 << 16


def _generators(device: torch.device) -> list[torch.Generator]:
    """The default generators a random op on ``device`` may draw from: the CPU's, and the accelerator's."""
    if device.type == "cpu":
        return [torch.default_generator]
    backend = torch.get_device_module(device.type)
    index = device.index if device.index is not None else backend.current_device()
    return [torch.default_generator, backend.default_generators[index]]


def per_rank_stream(module: nn.Module, rank: int) -> None:
    """Run ``module``'s random ops on a stream seeded by (one draw of the shared stream, ``rank``)."""
    if not 0 <= rank < _MAX_RANKS:
        raise ValueError(f"rank {rank} outside [0, {_MAX_RANKS})")
    saved: list[tuple[torch.Generator, torch.Tensor]] = []

    def enter(_: nn.Module, args: tuple[Any, ...]) -> None:
        if not dropping(module):
            return
        draw = int(torch.randint(1 << 46, ()))  # from the shared CPU stream: the same number on every rank
        for generator in _generators(args[0].device):
            saved.append((generator, generator.get_state()))
            generator.manual_seed(draw * _MAX_RANKS + rank)

    def leave(*_: Any) -> None:
        while saved:
            generator, state = saved.pop()
            generator.set_state(state)

    module.register_forward_pre_hook(enter)
    module.register_forward_hook(leave, always_call=True)
