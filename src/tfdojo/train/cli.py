"""``tfdojo train CONFIG --out DIR`` and ``tfdojo sample DIR``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def train(
    config: Annotated[Path, typer.Argument(help="A training config (TOML); see configs/")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, metrics.jsonl, loss.png")],
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Stop after N steps (the LR schedule keeps its own length)")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint in --out")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar")] = True,
) -> None:
    """Train a model from a config on Shakespeare (exact resume, spike diagnostics, metrics and a loss plot)."""
    from tfdojo.cli import friendly_errors
    from tfdojo.train import TrainConfig, Trainer

    with friendly_errors():
        trainer = Trainer(TrainConfig.from_toml(config), out, resume=resume, progress=progress)
        if resume:
            err.print(f"resuming {out} from step {trainer.start_step}", highlight=False)
        summary = trainer.run(max_steps)
    if trainer.par.world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
        if trainer.par.rank != 0:
            return
    val = f", validation {summary.final_val_loss:.4f}" if summary.final_val_loss is not None else ""
    spikes = f"; {len(summary.events)} spike(s), see {out}/diagnostics.json" if summary.events else ""
    err.print(
        f"done: {summary.steps} steps, loss {summary.final_loss:.4f}{val}{spikes}; {out}/loss.png", highlight=False
    )


def sample(
    run: Annotated[Path, typer.Argument(help="A run folder written by tfdojo train")],
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text to continue")] = "\n",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", "-n")] = 300,
    temperature: Annotated[float, typer.Option("--temperature", "-t")] = 0.8,
    top_k: Annotated[int | None, typer.Option("--top-k")] = 40,
    seed: Annotated[int | None, typer.Option("--seed")] = 0,
) -> None:
    """Generate from the newest checkpoint of a training run."""
    from tfdojo.cli import friendly_errors
    from tfdojo.train.sample import load_run, sample_text

    with friendly_errors():
        model, tokenizer, step = load_run(run)
        err.print(f"[dim]{run} at step {step}[/]", highlight=False)
        sys.stdout.write(prompt)
        sample_text(
            model, tokenizer, prompt, max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
            seed=seed, stream=lambda piece: (sys.stdout.write(piece), sys.stdout.flush()),
        )  # fmt: skip
        sys.stdout.write("\n")


def register(app: typer.Typer) -> None:
    """Mount ``train`` and ``sample`` on the top-level CLI."""
    app.command()(train)
    app.command()(sample)
