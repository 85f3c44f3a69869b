"""The process layout of a run: data shard, loss scale, model wrapping, checkpoint state and collectives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tfdojo.train.parallel.norms import clip_gradients
from tfdojo.train.step import accumulate_gradients, count_targets, forward_logits, token_loss_sum


@dataclass
class Parallelism:
    """One process of one process (the base class); distributed layouts override the collectives and wrapping."""

    rank: int = 0
    world: int = 1

    @property
    def data_rank(self) -> int:
        """Which data shard this process reads (its rank among the data-parallel replicas)."""
        return 0

    @property
    def data_world(self) -> int:
        """How many different data shards a step reads (data-parallel degree)."""
        return 1

    @property
    def loss_scale(self) -> float:
        """Factor on each process's loss before backward so averaged gradients equal the global-mean gradient."""
        return float(self.data_world)

    def wrap(self, model: nn.Module, config: Any) -> nn.Module:
        """The module the loop trains (the model itself, or a wrapper that communicates)."""
        from tfdojo.train.parallel.parallelize import activation_checkpointing, compile_model

        if config.checkpoint.activation_checkpointing:
            activation_checkpointing(model)
        return compile_model(model) if config.run.compile else model

    def sync_context(self, model: nn.Module):
        """Per micro-batch context (DDP skips the gradient all-reduce until the last one)."""
        return None

    def backward(self, model: nn.Module, micro_batches: list[dict], total_targets: int, autocast: str) -> float:
        """Gradients of one step over its micro-batches; returns this process's share of the mean loss."""
        return accumulate_gradients(
            model, micro_batches, total_targets=total_targets, loss_scale=self.loss_scale, autocast=autocast,
            sync=self.sync_context(model),
        )  # fmt: skip

    def clip(self, model: nn.Module, max_norm: float | None) -> float:
        """Global gradient norm before clipping (clipped to ``max_norm`` when set)."""
        return clip_gradients(list(model.parameters()), max_norm)

    def loss_sum(self, model: nn.Module, batches: list[dict]) -> tuple[float, int]:
        """Summed cross-entropy and target count over batches (no gradients), for validation."""
        total, count = 0.0, 0
        for batch in batches:
            total += float(token_loss_sum(forward_logits(model, batch), batch["labels"]))
            count += count_targets([batch])
        return total, count

    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in _unwrapped(model).state_dict().items()}

    def load_model_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        _unwrapped(model).load_state_dict(state)

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return optimizer.state_dict()

    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        optimizer.load_state_dict(state)

    def barrier(self) -> None:
        return None

    def sum_int(self, value: int) -> int:
        return value

    def sum_float(self, value: float) -> float:
        return value


def _unwrapped(model: nn.Module) -> nn.Module:
    """The plain model inside compile / DDP wrappers (whose state-dict keys carry prefixes)."""
    while True:
        inner = getattr(model, "_orig_mod", None) or getattr(model, "module", None)
        if inner is None:
            return model
        model = inner


def single_process() -> Parallelism:
    """Everything on this process."""
    return Parallelism()
