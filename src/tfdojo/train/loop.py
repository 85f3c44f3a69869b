"""The training loop: data, model, optimizer, schedule, checkpoints, diagnostics and metrics in one place.

    for step in start … max_steps:
        lr   = warmup-cosine(step) · rollback scale
        grads over grad_accum micro-batches (bf16 autocast optional)     -> the layout's backward
        clip; judge loss and grad norm (spike / NaN)                     -> diagnostics
        optimizer step, metrics line, evaluation, atomic checkpoint

Every batch is a function of (seed, step), so resuming from a checkpoint replays exactly the batches the
uninterrupted run would have seen: the loss curve is bit-identical.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tfdojo.calc.flops import mfu
from tfdojo.errors import CheckpointError, ConfigError, TfdojoError
from tfdojo.models.variants import VariantLM
from tfdojo.train.batches import Batch, fit_tokenizer, make_split
from tfdojo.train.checkpoint import (
    atomic_write_text,
    check_same_config,
    checkpoint_paths,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from tfdojo.train.config import TrainConfig
from tfdojo.train.corpus import shakespeare
from tfdojo.train.diagnostics import SpikeDetector, SpikeEvent, group_norms, layer_groups
from tfdojo.train.init import init_weights
from tfdojo.train.metrics import MetricsWriter, keep_before
from tfdojo.train.optim import make_optimizer, set_lr
from tfdojo.train.parallel import Parallelism
from tfdojo.train.parallel.distributed import from_environment
from tfdojo.train.parallel.norms import full_norm
from tfdojo.train.peak import measured_peak_flops
from tfdojo.train.plot import plot_loss
from tfdojo.train.schedule import lr_at
from tfdojo.train.step import autocast_context, count_targets
from tfdojo.train.tokenizer import TrainTokenizer, tokenizer_from_json


class TrainingDivergedError(TfdojoError):
    """Training kept spiking after every allowed rollback."""


@dataclass
class Faults:
    """Trouble injected on purpose (tests, demos of the diagnostics); each fires once, at its step."""

    corrupt_batches: set[int] = field(default_factory=set)  # steps whose inputs become random tokens
    lr_spikes: dict[int, float] = field(default_factory=dict)  # step -> learning-rate multiplier


@dataclass(frozen=True)
class RunSummary:
    """What a run did: steps, last losses, spike events and where its files are."""

    run_dir: Path
    steps: int
    final_loss: float
    final_val_loss: float | None
    events: tuple[SpikeEvent, ...]


def build_model(config: TrainConfig) -> VariantLM:
    """A freshly initialised model (seeded by the run seed) for the config."""
    torch.manual_seed(config.run.seed)
    return init_weights(VariantLM(config.model), config.model.n_layers)


class Trainer:
    """Runs (or resumes) one training run into ``run_dir``."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        resume: bool = False,
        progress: bool = True,
        faults: Faults | None = None,
        parallelism: Parallelism | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.progress = progress
        self.faults = faults or Faults()
        self.par = parallelism or from_environment(config)
        self.events: list[SpikeEvent] = []
        self.lr_scale = 1.0
        self._prepare(config)

    # ---- set-up -------------------------------------------------------------------------------------------

    def _prepare(self, config: TrainConfig) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.resume and checkpoint_paths(self.run_dir):
            raise ConfigError(f"{self.run_dir} already holds a run; pass --resume to continue it, or use a new folder")
        if self.resume:
            latest_checkpoint(self.run_dir)  # no checkpoint: say so before anything else
        corpus = shakespeare(config.data.val_plays, config.data.max_plays)
        self.tokenizer = self._tokenizer(config, corpus)
        self.config = config.with_vocab(self.tokenizer.vocab_size)
        if self.resume:
            check_same_config(self.run_dir, self.config.to_dict())
        elif self.par.rank == 0:
            atomic_write_text(self.run_dir / "config.json", json.dumps(self.config.to_dict(), indent=2))
        seed = self.config.run.seed
        self.train_data = make_split(self.config.data, [d.text for d in corpus.train], self.tokenizer, seed)
        self.val_batches = make_split(self.config.data, [d.text for d in corpus.val], self.tokenizer, seed).fixed(
            self.config.run.eval_batches, self.config.run.micro_batch
        )
        self.model = build_model(self.config)
        self.train_model = self.par.wrap(self.model, self.config)
        self.groups = layer_groups(self.model)  # after wrapping: FSDP and TP replace parameters in place
        self.optimizer = make_optimizer(self.train_model, self.config.optim)
        self.detector = SpikeDetector(self.config.diagnostics)
        self.start_step = 0
        if self.resume:
            self._restore(latest_checkpoint(self.run_dir))
            if self.par.rank == 0:  # the one writer of metrics.jsonl (ranks racing on its temporary file fail)
                keep_before(self.run_dir, self.start_step)

    def _tokenizer(self, config: TrainConfig, corpus) -> TrainTokenizer:
        path = self.run_dir / "tokenizer.json"
        if self.resume:
            if not path.is_file():
                raise CheckpointError(f"--resume: {path} is missing; the run cannot be continued with its vocabulary")
            return tokenizer_from_json(path.read_text(encoding="utf-8"))
        tokenizer = fit_tokenizer(config.data, corpus)
        if self.par.rank == 0:
            atomic_write_text(path, tokenizer.to_json())
        return tokenizer

    # ---- state --------------------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "model": self.par.model_state(self.train_model),
            "optimizer": self.par.optimizer_state(self.train_model, self.optimizer),
            "lr_scale": self.lr_scale,
            "detector": self.detector.state_dict(),
            "events": [e.to_dict() for e in self.events],
            "rng": rng_state(),
        }

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path)
        try:
            self.par.load_model_state(self.train_model, state["model"])
            self.par.load_optimizer_state(self.train_model, self.optimizer, state["optimizer"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"checkpoint {path} does not fit this model ({e}); was the config changed?") from None
        self.start_step = int(state["step"])
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.detector.load_state_dict(state["detector"])
        self.events = [SpikeEvent(**e) for e in state.get("events", [])]
        set_rng_state(state["rng"])

    def _save(self, step: int) -> None:
        state = self._state()  # every rank takes part in gathering sharded state
        if self.par.rank == 0:
            save_checkpoint(self.run_dir, step, state, self.config.checkpoint.keep)
        self.par.barrier()

    # ---- one step -----------------------------------------------------------------------------------------

    def _micro_batches(self, step: int) -> list[Batch]:
        r = self.config.run
        rank, world = self.par.data_rank, self.par.data_world
        batches = [
            self.train_data.batch(step * r.grad_accum + i, r.micro_batch, rank, world) for i in range(r.grad_accum)
        ]
        if step in self.faults.corrupt_batches:
            self.faults.corrupt_batches.discard(step)
            gen = torch.Generator().manual_seed(step)
            for b in batches:
                b["input_ids"] = torch.randint(0, self.config.model.vocab_size, b["input_ids"].shape, generator=gen)
                b["labels"] = torch.randint(0, self.config.model.vocab_size, b["labels"].shape, generator=gen)
        return batches

    def _lr(self, step: int) -> float:
        lr = lr_at(step, self.config.optim.lr, self.config.schedule) * self.lr_scale
        return lr * self.faults.lr_spikes.pop(step, 1.0)

    def evaluate(self) -> float:
        """Mean validation loss per target over the fixed held-out batches."""
        self.train_model.eval()
        with torch.no_grad(), autocast_context(self.config.precision.autocast):
            total, count = self.par.loss_sum(self.train_model, self.val_batches)
        self.train_model.train()
        return total / max(count, 1)

    def _step(self, step: int) -> tuple[dict[str, Any], bool]:
        """Run optimizer step ``step``; returns its metrics row and whether a rollback happened instead."""
        lr = self._lr(step)
        set_lr(self.optimizer, lr)
        micro = self._micro_batches(step)
        targets = self.par.sum_int(count_targets(micro))
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.par.backward(self.train_model, micro, targets, self.config.precision.autocast)
        loss = self.par.sum_float(loss)  # each shard's share of the global mean
        grad_norm = self.par.clip(self.train_model, self.config.optim.grad_clip)
        tokens = sum(b["input_ids"].numel() for b in micro) * self.par.data_world
        row: dict[str, Any] = {"step": step + 1, "loss": loss, "lr": lr, "grad_norm": grad_norm, "tokens": tokens}
        policy = self.config.diagnostics.policy
        if policy != "off":
            spike, lz, gz = self.detector.judge(loss, grad_norm)
            if spike:
                return self._on_spike(step, row, lz, gz)
            before = group_norms(self.groups, "data")
            old = {k: [p.detach().clone() for p in ps] for k, ps in self.groups.items()}
        self.optimizer.step()
        if policy != "off":
            ratios = {
                k: float(torch.stack([full_norm(p.detach() - o) for p, o in zip(ps, old[k], strict=True)]).norm())
                / max(before[k], 1e-12)
                for k, ps in self.groups.items()
            }
            self.detector.record(loss, grad_norm, group_norms(self.groups, "grad"), ratios)
        return row, False

    def _on_spike(self, step: int, row: dict[str, Any], lz: float, gz: float) -> tuple[dict[str, Any], bool]:
        policy = self.config.diagnostics.policy
        micro = list(range(step * self.config.run.grad_accum, (step + 1) * self.config.run.grad_accum))
        layers = self.detector.jumped_layers(group_norms(self.groups, "grad"), self._last_ratios())
        event = SpikeEvent(step + 1, micro, row["loss"], row["grad_norm"], _finite(lz), _finite(gz), policy, layers)
        self.events.append(event)
        self._report(event)
        if policy == "warn" and math.isfinite(row["loss"]) and math.isfinite(row["grad_norm"]):
            self.optimizer.step()
            return row | {"spike": "warned"}, False
        self.optimizer.zero_grad(set_to_none=True)
        if policy == "rollback" and checkpoint_paths(self.run_dir):
            rollbacks = sum(e.action == "rollback" for e in self.events)
            if rollbacks > self.config.diagnostics.max_rollbacks:
                raise TrainingDivergedError(
                    f"step {step + 1}: still spiking after {rollbacks - 1} rollbacks; "
                    "lower [optim] lr or check the data"
                )
            scale, events = self.lr_scale * self.config.diagnostics.lr_cut, self.events
            self.par.barrier()
            self._restore(latest_checkpoint(self.run_dir))
            self.lr_scale, self.events = scale, events  # the cut and the report survive the restore
            if self.par.rank == 0:
                keep_before(self.run_dir, self.start_step)
            return row | {"spike": "rollback"}, True
        event.action = "skip"
        return row | {"spike": "skipped"}, False

    def _last_ratios(self) -> dict[str, float] | None:
        return self.detector.update_ratios[-1] if self.detector.update_ratios else None

    def _report(self, event: SpikeEvent) -> None:
        if self.par.rank == 0:
            path = self.run_dir / "diagnostics.json"
            atomic_write_text(path, json.dumps([e.to_dict() for e in self.events], indent=2))

    # ---- the run ------------------------------------------------------------------------------------------

    def run(self, max_steps: int | None = None, *, max_seconds: float | None = None) -> RunSummary:
        """Train until ``max_steps`` (default: the schedule's) or ``max_seconds`` of wall clock, whichever first."""
        c = self.config
        end = max_steps if max_steps is not None else c.schedule.max_steps
        writer = MetricsWriter(self.run_dir) if self.par.rank == 0 else None
        peak = measured_peak_flops(torch.bfloat16 if c.precision.autocast == "bf16" else torch.float32)
        self.train_model.train()
        step, last, val = self.start_step, {"loss": math.nan}, None
        deadline = time.perf_counter() + max_seconds if max_seconds is not None else math.inf
        with _progress(self.progress and self.par.rank == 0, self.start_step, end) as bar:
            while step < end:
                if time.perf_counter() >= deadline:
                    end = step  # out of time: evaluate and checkpoint this step as the last
                    val = self.evaluate()
                    if writer is not None and step > self.start_step:
                        writer.write({"step": step, "val_loss": val, "stopped": "time"})
                    self._save(step)
                    break
                started = time.perf_counter()
                row, rolled_back = self._step(step)
                if rolled_back:
                    if writer is not None:
                        writer.close()
                        writer = MetricsWriter(self.run_dir)
                    step = self.start_step
                    bar.reset(step)
                    continue
                seconds = time.perf_counter() - started
                row["tok_s"] = row["tokens"] / seconds
                row["mfu"] = mfu(c.model, c.data.seq_len, row["tok_s"] / self.par.world, peak).value
                if (step + 1) % c.run.eval_every == 0 or step + 1 == end:
                    val = row["val_loss"] = self.evaluate()
                if writer is not None:
                    writer.write(row)
                if (step + 1) % c.checkpoint.every == 0 or step + 1 == end:
                    self._save(step + 1)
                bar.advance(row)
                last, step = row, step + 1
        if writer is not None:
            writer.close()
            from tfdojo.train.metrics import read_metrics

            plot_loss(read_metrics(self.run_dir), self.run_dir / "loss.png", title=f"{self.run_dir.name}: loss")
        return RunSummary(self.run_dir, step, float(last["loss"]), val, tuple(self.events))


def _finite(x: float) -> float:
    return x if math.isfinite(x) else 1e30


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def advance(self, row: dict[str, Any]) -> None:
        return None

    def reset(self, step: int) -> None:
        return None


class _RichBar(_NoBar):
    """A rich progress bar with loss, tokens/s, MFU and ETA."""

    def __init__(self, start: int, end: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[tok_s]} tok/s  MFU {task.fields[mfu]}"),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = self.bar.add_task("train", total=end, completed=start, loss="–", tok_s="–", mfu="–")

    def __enter__(self) -> _RichBar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def advance(self, row: dict[str, Any]) -> None:
        fields = {"loss": f"{row['loss']:.4f}", "tok_s": f"{row['tok_s']:,.0f}", "mfu": f"{row['mfu']:.1%}"}
        self.bar.update(self.task, advance=1, **fields)

    def reset(self, step: int) -> None:
        self.bar.update(self.task, completed=step)


def _progress(show: bool, start: int, end: int) -> _NoBar:
    return _RichBar(start, end) if show else _NoBar()
