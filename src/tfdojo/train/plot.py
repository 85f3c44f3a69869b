"""The loss-curve figure of a run (``DIR/loss.png``): training loss per step and validation loss."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def plot_loss(
    rows: Sequence[dict[str, Any]], path: Path, title: str = "loss", others: dict[str, Sequence] = None
) -> Path:
    """Training and validation loss against step; ``others`` adds named runs to compare (label -> rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    runs = {"": rows, **(others or {})}
    for label, run in runs.items():
        train = [(r["step"], r["loss"]) for r in run if "loss" in r]
        val = [(r["step"], r["val_loss"]) for r in run if r.get("val_loss") is not None]
        prefix = f"{label} " if label else ""
        if train:
            line = ax.plot(*zip(*train, strict=True), lw=1, alpha=0.8, label=f"{prefix}train")[0]
            if val:
                ax.plot(*zip(*val, strict=True), "o-", color=line.get_color(), ms=3, label=f"{prefix}validation")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
