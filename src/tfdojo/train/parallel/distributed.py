"""Layouts over several processes (launched by ``torchrun``): DDP, FSDP2, tensor parallel, FSDP × TP
(and pipeline parallel, in ``pipeline.py``).

    mode      data shards   model                                   checkpoint state
    ddp       every rank    replicated, gradients all-reduced       rank 0's copy
    fsdp      every rank    every parameter sharded (ZeRO-3)        gathered to full tensors
    tp        one           blocks split Megatron-style by heads    gathered to full tensors
              (sequence_parallel: norms and residual stream split by positions too)
    fsdp_tp   mesh rows     TP inside a row, FSDP across rows       gathered to full tensors
    pp        one           consecutive blocks per rank             merged from every stage

Checkpoints always hold full (unsharded) tensors, so a run saved under one layout reads like any other.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.nn.parallel import DistributedDataParallel

from tfdojo.errors import ConfigError
from tfdojo.train.parallel.layout import Parallelism
from tfdojo.train.parallel.parallelize import (
    activation_checkpointing,
    compile_model,
    fully_shard_model,
    tensor_parallel,
)

FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


@dataclass
class _Collective(Parallelism):
    """Collectives over the data-parallel ranks (the default process group unless a layout says otherwise)."""

    def data_group(self) -> dist.ProcessGroup | None:
        """The process group of the ranks that read different data (None: every rank)."""
        return None

    def barrier(self) -> None:
        dist.barrier()

    def sum_int(self, value: int) -> int:
        return int(self._data_sum(torch.tensor([value], dtype=torch.long)))

    def sum_float(self, value: float) -> float:
        return float(self._data_sum(torch.tensor([value], dtype=torch.float64)))

    def _data_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.data_world > 1:  # ranks that share their data (tensor parallel) must not count it twice
            dist.all_reduce(t, group=self.data_group())
        return t


@dataclass
class _RankPerShard(_Collective):
    """Layouts in which every rank reads its own data shard."""

    @property
    def data_rank(self) -> int:
        return self.rank

    @property
    def data_world(self) -> int:
        return self.world


@dataclass
class DataParallel(_RankPerShard):
    """DDP (Li et al., 2020): each rank a full replica on its own data shard; gradients all-reduced in buckets."""

    def wrap(self, model: nn.Module, config: Any) -> nn.Module:
        return DistributedDataParallel(super().wrap(model, config))

    def sync_context(self, model: nn.Module):
        return lambda last: nullcontext() if last else model.no_sync()  # all-reduce once, after the last micro-batch


@dataclass
class _Sharded(_Collective):
    """Layouts whose parameters are DTensors: checkpoint state is gathered to full tensors through DCP's API."""

    mesh: DeviceMesh | None = field(default=None, repr=False)

    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return get_model_state_dict(model, options=FULL)

    def load_model_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))

    def optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return get_optimizer_state_dict(model, optimizer, options=FULL)

    def load_optimizer_state(self, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


@dataclass
class FullyShardedDataParallel(_Sharded, _RankPerShard):
    """FSDP2 ``fully_shard`` (ZeRO-3, Rajbhandari et al., 2020): parameters, gradients and Adam state sharded."""

    def wrap(self, model: nn.Module, config: Any) -> nn.Module:
        if config.checkpoint.activation_checkpointing:
            activation_checkpointing(model)
        if config.run.compile:
            compile_model(model)
        return fully_shard_model(model, self.mesh)

    def sync_context(self, model: nn.Module):
        def context(last: bool):
            model.set_requires_gradient_sync(last)  # reduce-scatter once, after the last micro-batch
            return nullcontext()

        return context


@dataclass
class TensorParallel(_Sharded):
    """Megatron-LM tensor parallelism (Shoeybi et al., 2019): heads and FFN columns split over ranks.

    Every rank reads the same batch (the base class's one data shard)."""

    def wrap(self, model: nn.Module, config: Any) -> nn.Module:
        tensor_parallel(model, self.mesh, sequence_parallel=config.parallel.sequence_parallel)
        return super().wrap(model, config)  # then checkpointing and compile, on the split blocks


@dataclass
class FsdpTensorParallel(_Sharded):
    """2-D: tensor parallel inside each row of the mesh, FSDP across rows (each row reads its own data)."""

    @property
    def data_rank(self) -> int:
        return self.mesh["dp"].get_local_rank()

    @property
    def data_world(self) -> int:
        return self.mesh["dp"].size()

    def data_group(self) -> dist.ProcessGroup | None:
        return self.mesh["dp"].get_group()

    def wrap(self, model: nn.Module, config: Any) -> nn.Module:
        tensor_parallel(model, self.mesh["tp"], sequence_parallel=config.parallel.sequence_parallel)
        if config.checkpoint.activation_checkpointing:
            activation_checkpointing(model)
        if config.run.compile:
            compile_model(model)
        return fully_shard_model(model, self.mesh["dp"])

    def sync_context(self, model: nn.Module):
        return FullyShardedDataParallel.sync_context(self, model)


def from_environment(config: Any) -> Parallelism:
    """The layout ``[parallel] mode`` asks for, over the processes ``torchrun`` started (WORLD_SIZE, RANK)."""
    from tfdojo.train.parallel.layout import single_process

    mode = config.parallel.mode
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if mode == "none":
        if world > 1:
            raise ConfigError(f"started on {world} processes but [parallel] mode is 'none'; set ddp, fsdp, tp or …")
        return single_process()
    if "RANK" not in os.environ:
        raise ConfigError(f"[parallel] mode = {mode!r} needs torchrun: torchrun --nproc-per-node N -m tfdojo train …")
    if not dist.is_initialized():
        dist.init_process_group("gloo" if not torch.cuda.is_available() else "cpu:gloo,cuda:nccl")
    rank = dist.get_rank()
    if mode == "ddp":
        return DataParallel(rank, world)
    if mode == "pp":
        from tfdojo.train.parallel.pipeline import PipelineParallel

        p = config.parallel
        return PipelineParallel(rank, world, microbatches=p.pp_microbatches, schedule_kind=p.pp_schedule)
    if mode == "fsdp":
        return FullyShardedDataParallel(rank, world, init_device_mesh("cpu", (world,), mesh_dim_names=("dp",)))
    tp = config.parallel.tp_size if mode == "fsdp_tp" else world
    if tp < 1 or world % tp:
        raise ConfigError(f"[parallel] tp_size = {tp} must divide the {world} processes")
    if config.model.n_heads % tp or config.model.kv_heads % tp or config.model.ffn_hidden % tp:
        raise ConfigError(f"tensor parallel over {tp} ranks needs heads, KV heads and ffn_hidden divisible by {tp}")
    if config.parallel.sequence_parallel and (config.data.seq_len % tp or not config.data.packing):
        raise ConfigError(f"sequence parallel over {tp} ranks needs packing = true and seq_len divisible by {tp}")
    if mode == "tp":
        return TensorParallel(rank, world, init_device_mesh("cpu", (world,), mesh_dim_names=("tp",)))
    mesh = init_device_mesh("cpu", (world // tp, tp), mesh_dim_names=("dp", "tp"))
    return FsdpTensorParallel(rank, world, mesh)
