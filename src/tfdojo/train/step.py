"""One optimizer step: micro-batches with accumulation, optional bf16 autocast, gradient clipping.

The loss of a step is the mean over every target of every micro-batch (of every process, under data
parallelism): each micro-batch contributes sum(cross-entropy) / (targets in the whole step), so k accumulated
micro-batches give exactly the gradient of one batch k times larger, however many targets are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.train.packing import IGNORE

Batch = dict[str, Tensor]
Forward = Callable[[nn.Module, Batch], Tensor]


def model_inputs(batch: Batch) -> dict[str, Tensor]:
    """The model's keyword inputs of a batch: everything but the ids and the targets."""
    return {k: v for k, v in batch.items() if k not in ("input_ids", "labels")}


def forward_logits(model: nn.Module, batch: Batch) -> Tensor:
    """Logits (B, T, V) of a tfdojo model or of an HF model (whose output carries ``.logits``)."""
    out = model(batch["input_ids"], **model_inputs(batch))
    return out if isinstance(out, Tensor) else out.logits


def token_loss_sum(logits: Tensor, labels: Tensor) -> Tensor:
    """Sum of next-token cross-entropies over the targets that are not ignored (computed in fp32)."""
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="sum")


def autocast_context(kind: str):
    """bf16 autocast on CPU (matrix products in bf16, reductions and the loss in fp32), or nothing."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if kind == "bf16" else nullcontext()


@dataclass(frozen=True)
class StepResult:
    """What one step measured: mean loss, gradient norm before clipping, targets and tokens seen."""

    loss: float
    grad_norm: float
    targets: int
    tokens: int


def count_targets(micro_batches: Sequence[Batch]) -> int:
    """Targets that count toward the loss in a set of micro-batches."""
    return int(sum((b["labels"] != IGNORE).sum() for b in micro_batches))


def accumulate_gradients(
    model: nn.Module,
    micro_batches: Sequence[Batch],
    *,
    total_targets: int,
    loss_scale: float = 1.0,
    autocast: str = "none",
    forward: Forward = forward_logits,
    sync: Callable[[bool], object] | None = None,
) -> float:
    """Backward over every micro-batch; returns the summed loss ÷ ``total_targets`` (the step's mean loss).

    ``loss_scale`` multiplies each loss before backward (data parallelism passes the world size, because DDP
    averages gradients over processes while the denominator already counts every process's targets).
    ``sync(last)`` is called before each backward so DDP can skip the all-reduce until the last micro-batch.
    """
    total = 0.0
    for i, batch in enumerate(micro_batches):
        context = sync(i == len(micro_batches) - 1) if sync is not None else nullcontext()
        with context:
            with autocast_context(autocast):
                logits = forward(model, batch)
            loss = token_loss_sum(logits, batch["labels"]) / total_targets
            (loss * loss_scale).backward()
        total += float(loss.detach())
    return total
