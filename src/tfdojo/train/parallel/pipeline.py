"""Pipeline parallelism: consecutive blocks on consecutive ranks, micro-batches flowing through them.

    rank 0: embed + blocks 0..k-1 ──h──▶ rank 1: blocks k..L-1 + norm + head ──▶ loss
    GPipe (Huang et al., 2019): all forwards, then all backwards (bubble (p-1)/(m+p-1) of the step).
    1F1B (PipeDream-Flush, Narayanan et al., 2021): after warm-up each rank alternates one forward and one
    backward, so at most p micro-batches of activations are alive instead of m.

Each stage keeps the full model's parameter names (a ``ModuleDict`` keyed by block index), so checkpoints
merge into one ordinary state dict. Packed rows travel with their document ids, which every stage needs for
its masks and positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

from tfdojo.errors import ConfigError
from tfdojo.models.decoding import document_masks
from tfdojo.models.variants import VariantLM
from tfdojo.train.parallel.distributed import _Collective
from tfdojo.train.parallel.norms import full_norm
from tfdojo.train.parallel.parallelize import activation_checkpointing, compile_model
from tfdojo.train.step import autocast_context, token_loss_sum


class StageModel(nn.Module):
    """Blocks ``[first, last)`` of a VariantLM, with the embeddings on the first stage and the head on the last."""

    def __init__(self, model: VariantLM, first: int, last: int, *, is_first: bool, is_last: bool) -> None:
        super().__init__()
        self.config = model.config
        self.embed = model.embed if is_first else None
        self.pos_embed = model.pos_embed if is_first else None
        self.drop = model.drop if is_first else None
        self.rope = model.rope
        self.layers = nn.ModuleDict({str(i): model.layers[i] for i in range(first, last)})
        self.norm = model.norm if is_last else None
        self.lm_head = model.lm_head if is_last else None

    def forward(self, x: Tensor, document_ids: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Ids (first stage) or hidden states (B, T, dim) -> hidden states and ids onward, or logits (last)."""
        positions, mask = document_masks(document_ids)  # the same geometry VariantLM builds for packed rows
        h = self.embed(x) if self.embed is not None else x
        if self.pos_embed is not None:
            h = h + self.pos_embed(positions)
        if self.drop is not None:
            h = self.drop(h)
        rope = self.rope(positions, h.dtype) if self.rope is not None else None
        for index, layer in self.layers.items():
            h = layer(h, rope=rope, mask=mask, causal=self.config.causal, cache=None, layer=int(index))
        if self.lm_head is not None:
            return self.lm_head(self.norm(h))
        return h.contiguous(), document_ids.contiguous()  # gloo sends only contiguous tensors


def stage_bounds(n_layers: int, stages: int, stage: int) -> tuple[int, int]:
    """Blocks of one stage: as even a split as the count allows, earlier stages taking the remainder."""
    base, extra = divmod(n_layers, stages)
    first = stage * base + min(stage, extra)
    return first, first + base + (stage < extra)


@dataclass
class PipelineParallel(_Collective):
    """One stage per rank; every stage reads the same batch, split into ``pp_microbatches`` micro-batches."""

    microbatches: int = 4
    schedule_kind: str = "gpipe"
    stage: PipelineStage | None = field(default=None, repr=False)
    schedule: Any = field(default=None, repr=False)
    total_targets: int = 1

    @property
    def is_last(self) -> bool:
        return self.rank == self.world - 1

    def wrap(self, model: nn.Module, config: Any) -> nn.Module:
        c = config.model
        if c.tie_embeddings:
            raise ConfigError(
                "pipeline parallel puts the embedding and the head on different ranks: set tie_embeddings = false"
            )
        if not config.data.packing:
            raise ConfigError(
                "pipeline parallel carries packed rows (document ids) between stages: set [data] packing = true"
            )
        if c.n_layers < self.world or config.run.micro_batch % self.microbatches:
            raise ConfigError(
                f"pipeline parallel needs ≥ {self.world} blocks and micro_batch divisible by pp_microbatches "
                f"({config.run.micro_batch} % {self.microbatches})"
            )
        first, last = stage_bounds(c.n_layers, self.world, self.rank)
        stage_model = StageModel(model, first, last, is_first=self.rank == 0, is_last=self.is_last)
        if config.checkpoint.activation_checkpointing:
            activation_checkpointing(stage_model)
        if config.run.compile:
            compile_model(stage_model)
        self.stage = PipelineStage(stage_model, self.rank, self.world, torch.device("cpu"))
        kind = Schedule1F1B if self.schedule_kind == "1f1b" else ScheduleGPipe
        self.schedule = kind(self.stage, self.microbatches, loss_fn=self._loss, scale_grads=False)
        return stage_model

    def _loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        return token_loss_sum(logits, labels) / self.total_targets  # each micro-batch's share of the step mean

    def backward(self, model: nn.Module, micro_batches: list[dict], total_targets: int, autocast: str) -> float:
        self.total_targets = total_targets
        total = 0.0
        for batch in micro_batches:
            losses: list[Tensor] = []
            with autocast_context(autocast):
                if self.rank == 0:
                    self.schedule.step(batch["input_ids"], batch["document_ids"])
                elif self.is_last:
                    self.schedule.step(target=batch["labels"], losses=losses)
                else:
                    self.schedule.step()
            total += float(sum(loss.detach() for loss in losses)) if self.is_last else 0.0
        return self._from_last(total)

    def _from_last(self, value: float) -> float:
        """The last stage's number on every rank (the others contribute 0 to a sum)."""
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t)

    def sum_float(self, value: float) -> float:
        return value  # backward already shared the loss with every stage

    def clip(self, model: nn.Module, max_norm: float | None) -> float:
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        local = torch.stack([full_norm(g) ** 2 for g in grads]).sum().double().reshape(1)
        dist.all_reduce(local)  # every stage's share of the global squared norm
        total = float(local.sqrt())
        if max_norm is not None:
            coefficient = min(1.0, max_norm / (total + 1e-6))
            for g in grads:
                g.mul_(coefficient)
        return total

    def loss_sum(self, model: nn.Module, batches: list[dict]) -> tuple[float, int]:
        total, count = 0.0, 0
        for batch in batches:
            losses: list[Tensor] = []
            self.total_targets = 1
            if self.rank == 0:
                self.schedule.eval(batch["input_ids"], batch["document_ids"])
            elif self.is_last:
                self.schedule.eval(target=batch["labels"], losses=losses)
            else:
                self.schedule.eval()
            total += float(sum(loss.detach() for loss in losses)) if self.is_last else 0.0
            count += int((batch["labels"] != -100).sum())
        return self._from_last(total), count

    def model_state(self, model: nn.Module) -> dict[str, Tensor]:
        pieces: list[dict[str, Tensor]] = [None] * self.world  # type: ignore[list-item]
        dist.all_gather_object(pieces, {k: v.detach().clone() for k, v in model.state_dict().items()})
        return {k: v for piece in pieces for k, v in piece.items()}

    def load_model_state(self, model: nn.Module, state: dict[str, Tensor]) -> None:
        own = model.state_dict()
        model.load_state_dict({k: state[k] for k in own})

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        pieces: list[dict[str, Any]] = [None] * self.world  # type: ignore[list-item]
        dist.all_gather_object(pieces, get_optimizer_state_dict(model, optimizer))  # FQN-keyed, on every rank
        merged = {"state": {}, "param_groups": [dict(g, params=[]) for g in pieces[0]["param_groups"]]}
        for piece in pieces:
            merged["state"] |= piece["state"]
            for group, theirs in zip(merged["param_groups"], piece["param_groups"], strict=True):
                group["params"] += theirs["params"]
        return merged

    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        own = set(model.state_dict())
        mine = {
            "state": {k: v for k, v in state["state"].items() if k in own},
            "param_groups": [dict(g, params=[p for p in g["params"] if p in own]) for g in state["param_groups"]],
        }
        set_optimizer_state_dict(model, optimizer, mine)
