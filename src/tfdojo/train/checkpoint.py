"""Checkpoints that survive a kill: written to a temporary file, flushed, then renamed into place.

A checkpoint holds everything a bit-identical resume needs: model and optimizer state, the step (which is
also the data position, see ``batches``), the learning-rate scale after any rollback, the spike detector's
history and the RNG states. ``DIR/config.json`` and ``DIR/tokenizer.json`` beside it say what was trained.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import torch

from tfdojo.errors import CheckpointError, ConfigError

CHECKPOINTS = "checkpoints"
_NAME = re.compile(r"^step_(\d{8})\.pt$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def rng_state() -> dict[str, Any]:
    """Every random number generator a training step may draw from."""
    return {"torch": torch.get_rng_state(), "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])


def checkpoint_paths(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    folder = run_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Save ``state`` as the checkpoint after ``step`` optimizer steps; drop all but the newest ``keep``."""
    folder = run_dir / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:08d}.pt"
    tmp = folder / f".{path.name}.tmp"
    with open(tmp, "wb") as f:
        torch.save({"format": 1, "step": step, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for old in checkpoint_paths(run_dir)[:-keep]:
        old.unlink()
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint's state; CheckpointError saying what is wrong and what to do when it is damaged."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated zip, a foreign pickle, an I/O error: all mean "damaged"
        raise CheckpointError(
            f"checkpoint {path} is damaged ({type(e).__name__}: {e}); delete it to resume from the one before, "
            f"or start a new run in an empty folder"
        ) from None
    missing = {"format", "step", "model", "optimizer"} - set(state) if isinstance(state, dict) else {"everything"}
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {sorted(missing)}; it was not written by tfdojo train")
    return state


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest checkpoint of a run; a clear error (never a silent fresh start) when there is none."""
    paths = checkpoint_paths(run_dir)
    if not paths:
        raise CheckpointError(f"--resume: {run_dir} has no checkpoints under {CHECKPOINTS}/; drop --resume to start")
    return paths[-1]


def check_same_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Refuse to resume a run whose saved config differs from the one given."""
    saved_path = run_dir / "config.json"
    if not saved_path.is_file():
        raise CheckpointError(f"--resume: {saved_path} is missing, so the checkpoint's config is unknown")
    try:
        saved = json.loads(saved_path.read_text())
    except ValueError as e:
        raise CheckpointError(f"{saved_path} is damaged ({e})") from None
    ours = json.loads(json.dumps(config))  # tuples -> lists, as saved
    if saved != ours:
        diff = sorted(
            f"[{s}] {k}" for s in set(saved) | set(ours) for k in set(saved.get(s, {})) | set(ours.get(s, {}))
            if saved.get(s, {}).get(k) != ours.get(s, {}).get(k)
        )  # fmt: skip
        raise ConfigError(f"--resume: the config differs from the run in {run_dir}: {', '.join(diff)}")
