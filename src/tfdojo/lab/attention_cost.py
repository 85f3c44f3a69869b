"""Attention cost vs length (the question behind FlashAttention, Dao et al., 2022, and linear attention,
Katharopoulos et al., 2020): eager attention's work and largest intermediate grow like T², a tiled kernel keeps
the work but only O(T) memory, and a sliding window or linear attention make both grow like T."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from tfdojo.lab.figures import figure
from tfdojo.lab.result import Finding
from tfdojo.nn.attention import scaled_dot_product

HEADS, HEAD_DIM = 9, 64  # SmolLM2-135M's, as in bench/attention.py
BACKENDS: dict[str, dict[str, Any]] = {
    "eager": {"backend": "eager"},
    "sdpa": {"backend": "sdpa"},
    "tiled": {"backend": "tiled"},
    "tiled, window 64": {"backend": "tiled", "window": 64},
    "linear": {"backend": "linear"},
}


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operator returns: the intermediate a backend has to hold at once."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel() * t.element_size())
        return out


@torch.inference_mode()
def measure(options: dict[str, Any], length: int) -> dict[str, float]:
    """FLOPs (torch's flop counter), largest intermediate bytes and best-of-3 seconds for one causal forward."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, HEADS, length, HEAD_DIM, generator=g) for _ in range(3))  # (B, H, T, D)
    counter = FlopCounterMode(display=False)
    with counter:
        scaled_dot_product(q, k, v, causal=True, **options)
    with LargestTensor() as largest:
        scaled_dot_product(q, k, v, causal=True, **options)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        scaled_dot_product(q, k, v, causal=True, **options)
        times.append(time.perf_counter() - start)
    return {"flops": counter.get_total_flops(), "largest_bytes": largest.largest, "seconds": min(times)}


def growth(values: list[float], lengths: list[int]) -> float | None:
    """The exponent p in value ∝ T^p between the shortest and the longest length (None when not counted)."""
    if min(values) <= 0:
        return None  # the flop counter has no formula for CPU SDPA's fused kernel
    return math.log(values[-1] / values[0]) / math.log(lengths[-1] / lengths[0])


def run(out: Path, *, quick: bool = False) -> Finding:
    """Sweep the lengths for every backend; fit the growth exponent of FLOPs and of the largest intermediate."""
    lengths = [256, 512, 1024] if quick else [512, 1024, 2048, 4096]
    rows = {name: [measure(options, t) for t in lengths] for name, options in BACKENDS.items()}
    exponent = {
        name: {key: growth([r[key] for r in points], lengths) for key in ("flops", "largest_bytes", "seconds")}
        for name, points in rows.items()
    }
    checks = {
        "eager FLOPs and memory grow like T^2": exponent["eager"]["flops"] > 1.8
        and exponent["eager"]["largest_bytes"] > 1.8,
        # causal tiling skips the tiles above the diagonal; the diagonal's share shrinks as T grows, so p -> 2
        "tiled keeps ~T^2 FLOPs (p > 1.5) but O(T) memory": exponent["tiled"]["flops"] > 1.5
        and exponent["tiled"]["largest_bytes"] < 1.2,
        "sdpa on CPU never holds a T x T matrix": exponent["sdpa"]["largest_bytes"] < 1.2,
        "window and linear attention grow like T": all(
            exponent[n]["flops"] < 1.2 and exponent[n]["largest_bytes"] < 1.2 for n in ("tiled, window 64", "linear")
        ),
    }
    with figure(out, "attention-cost", ncols=3, width=3.4) as axes:
        for name, points in rows.items():
            for ax, key in zip(axes, ("flops", "largest_bytes", "seconds"), strict=True):
                ax.loglog(lengths, [max(p[key], 1e-9) for p in points], "o-", markersize=3, label=name)
        for ax, title in zip(
            axes, ("FLOPs (flop counter)", "largest intermediate (bytes)", "seconds (shared CPU)"), strict=True
        ):
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("sequence length T")
        axes[0].legend(fontsize=7)
    numbers = {
        "lengths": lengths,
        "heads": HEADS,
        "head_dim": HEAD_DIM,
        "rows": rows,
        "growth_exponent": exponent,
        "checks": checks,
    }
    return Finding(all(checks.values()), numbers, [str(out / "attention-cost.png")])
