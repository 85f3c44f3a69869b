"""The typed training config: one dataclass per concern, read from TOML with every field checked.

A config file has one table per section (``[model]`` is any :class:`~tfdojo.models.variants.VariantConfig`)::

    [model]      dim = 128, n_layers = 4, ...     (vocab_size is taken from the tokenizer when omitted)
    [data]       tokenizer = "char", seq_len = 64, packing = true, ...
    [optim]      lr, betas, weight_decay, grad_clip
    [schedule]   warmup_steps, max_steps, min_lr_ratio        (linear warmup, then cosine to min_lr_ratio·lr)
    [run]        micro_batch, grad_accum, eval_every, eval_batches, seed, ...
    [precision]  autocast = "none" | "bf16"
    [checkpoint] every, keep, activation_checkpointing
    [diagnostics] policy = "off" | "warn" | "skip" | "rollback", z_threshold, ...
    [parallel]   mode = "none" | "ddp" | "fsdp" | "tp" | "fsdp_tp" | "pp", tp_size, sequence_parallel, ...
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tfdojo.errors import ConfigError
from tfdojo.models.variants import SparsePattern, VariantConfig
from tfdojo.nn.rope import RopeScaling

TokenizerKind = Literal["char", "bpe"]
AutocastKind = Literal["none", "bf16"]
SpikePolicy = Literal["off", "warn", "skip", "rollback"]
ParallelMode = Literal["none", "ddp", "fsdp", "tp", "fsdp_tp", "pp"]
PipelineSchedule = Literal["gpipe", "1f1b"]


@dataclass
class DataConfig:
    """Where tokens come from: Shakespeare's plays, a tokenizer, and how rows are made (packed or bucketed)."""

    tokenizer: TokenizerKind = "char"
    bpe_vocab_size: int = 1024
    seq_len: int = 128
    packing: bool = True  # packed rows with document masks; False: one sample per row, bucketed by length
    val_plays: int = 4  # whole plays held out for validation (the last ones in sorted order)
    max_plays: int | None = None  # use only the first N training plays (small tests and demos)

    def __post_init__(self) -> None:
        if self.seq_len < 2 or self.bpe_vocab_size < 64 or self.val_plays < 1:
            raise ConfigError(f"[data] needs seq_len ≥ 2, bpe_vocab_size ≥ 64, val_plays ≥ 1: {self}")


@dataclass
class OptimConfig:
    """AdamW (Loshchilov & Hutter, 2019) with decoupled weight decay on matrices only, and gradient clipping."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float | None = 1.0

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)  # type: ignore[assignment]  (TOML gives a list)
        if (
            self.lr <= 0
            or not all(0 <= b < 1 for b in self.betas)
            or (self.grad_clip is not None and self.grad_clip <= 0)
        ):
            raise ConfigError(f"[optim] needs lr > 0, 0 ≤ betas < 1 and grad_clip > 0 (or absent): {self}")


@dataclass
class ScheduleConfig:
    """Linear warmup to the peak learning rate, then cosine decay to ``min_lr_ratio`` of it at ``max_steps``."""

    warmup_steps: int = 100
    max_steps: int = 2000
    min_lr_ratio: float = 0.1

    def __post_init__(self) -> None:
        if self.max_steps < 1 or not 0 <= self.warmup_steps <= self.max_steps or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"[schedule] needs 0 ≤ warmup_steps ≤ max_steps, 0 ≤ min_lr_ratio ≤ 1: {self}")


@dataclass
class RunConfig:
    """Batch geometry, evaluation cadence and the seed every random choice derives from."""

    micro_batch: int = 16
    grad_accum: int = 1
    eval_every: int = 200
    eval_batches: int = 8
    seed: int = 0
    compile: bool = False

    def __post_init__(self) -> None:
        if min(self.micro_batch, self.grad_accum, self.eval_every, self.eval_batches) < 1:
            raise ConfigError(f"[run] sizes must be ≥ 1: {self}")


@dataclass
class PrecisionConfig:
    """Mixed precision: bf16 autocast keeps fp32 master weights and optimizer state (no loss scaling needed)."""

    autocast: AutocastKind = "none"


@dataclass
class CheckpointConfig:
    """Checkpoints on disk (atomic) and activation checkpointing (recompute each block in backward)."""

    every: int = 500
    keep: int = 2
    activation_checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.every < 1 or self.keep < 1:
            raise ConfigError(f"[checkpoint] needs every ≥ 1 and keep ≥ 1: {self}")


@dataclass
class DiagnosticsConfig:
    """Loss-spike and NaN detection: robust z-scores of loss and grad norm against a running window."""

    policy: SpikePolicy = "skip"
    z_threshold: float = 6.0
    loss_margin: float = 0.1  # and a loss spike must exceed the median loss by this fraction
    grad_factor: float = 10.0  # and a gradient spike must be this many times the median gradient norm (clipping
    # absorbs smaller ones; healthy runs show 4x blips at plateaus)
    window: int = 50  # steps of history the statistics use
    min_history: int = 20  # no spike is declared before this many clean steps
    lr_cut: float = 0.5  # rollback multiplies the learning rate by this
    max_rollbacks: int = 3

    def __post_init__(self) -> None:
        if self.z_threshold <= 0 or self.window < 4 or not 0 < self.lr_cut <= 1 or self.min_history < 2:
            raise ConfigError("[diagnostics] needs z_threshold > 0, window ≥ 4, min_history ≥ 2, 0 < lr_cut ≤ 1")


@dataclass
class ParallelConfig:
    """How the single-device model is spread over processes (applied in ``tfdojo.train.parallel``)."""

    mode: ParallelMode = "none"
    tp_size: int = 1  # tensor-parallel degree for "tp" and "fsdp_tp" (the rest of the ranks shard with FSDP)
    pp_schedule: PipelineSchedule = "gpipe"
    pp_microbatches: int = 4
    sequence_parallel: bool = False  # tensor-parallel modes: norms and residuals split by sequence (Megatron-SP)

    def __post_init__(self) -> None:
        if self.sequence_parallel and self.mode not in ("tp", "fsdp_tp"):
            raise ConfigError(f"[parallel] sequence_parallel needs mode 'tp' or 'fsdp_tp', not {self.mode!r}")


@dataclass
class TrainConfig:
    """Everything one training run needs; ``from_toml`` reads and validates a file."""

    model: VariantConfig = field(default_factory=VariantConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)

    @property
    def tokens_per_step(self) -> int:
        """Tokens in one optimizer step on one process (micro-batch × accumulation × sequence length)."""
        return self.run.micro_batch * self.run.grad_accum * self.data.seq_len

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        """Read a config file; ConfigError names the file and the offending table or field."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"no training config at {path}; see configs/ for examples") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path} is not valid TOML: {e}") from None
        return cls.from_dict(raw, where=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "config") -> TrainConfig:
        """Build from nested dicts (the parsed TOML); the model's vocab_size may be left for the tokenizer."""
        raw = dict(raw)
        model = dict(raw.pop("model", {}))
        model.setdefault("vocab_size", 256)  # a placeholder until the tokenizer is known (see with_vocab)
        sections = {"model": _build(VariantConfig, model, f"{where} [model]")}
        for f in dataclasses.fields(cls):
            if f.name != "model":
                sections[f.name] = _build(_section_type(f), raw.pop(f.name, {}), f"{where} [{f.name}]")
        if raw:
            raise ConfigError(
                f"{where}: unknown tables {sorted(raw)}; known: {[f.name for f in dataclasses.fields(cls)]}"
            )
        return cls(**sections)

    def with_vocab(self, vocab_size: int) -> TrainConfig:
        """This config with the model's vocabulary set to the tokenizer's."""
        return dataclasses.replace(self, model=dataclasses.replace(self.model, vocab_size=vocab_size))

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts (saved beside every checkpoint so a run can be reproduced and resumed)."""
        return dataclasses.asdict(self)


def _section_type(f: dataclasses.Field[Any]) -> type:
    hints = typing.get_type_hints(TrainConfig)
    return hints[f.name]


_NESTED = {"rope_scaling": RopeScaling, "sparse": SparsePattern}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """``cls(**values)`` with unknown keys and wrongly typed values refused by name."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a table, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown fields {unknown}; known: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        if name in _NESTED and isinstance(value, dict):
            value = _build(_NESTED[name], value, f"{where}.{name}")
        elif not _fits(value, hints[name]):
            raise ConfigError(f"{where}: {name} = {value!r} is not a {hints[name]}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _fits(value: Any, hint: Any) -> bool:
    """Whether a TOML value can fill a field of the given type hint (ints fill floats; lists fill tuples)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, list | tuple)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True
