"""Small PNG figures with matplotlib's Agg backend (no display needed), one file per experiment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: the lab runs in CI and on servers
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


@contextmanager
def figure(out: Path, name: str, ncols: int = 1, width: float = 4.2, height: float = 3.2) -> Iterator[Any]:
    """Yield ``ncols`` axes; on exit save ``out/name.png`` at a small size and close the figure."""
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    try:
        yield list(axes[0])
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=72)
    finally:
        plt.close(fig)
