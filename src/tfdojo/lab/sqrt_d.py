"""Why attention divides by √d (Vaswani et al., 2017, §3.2.1): without it, score variance grows with d, the
softmax saturates and its gradient vanishes; with it, all three stay put as the head dimension grows."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from tfdojo.lab.figures import figure
from tfdojo.lab.result import Finding


def inverse_sqrt(d: int) -> float:
    """The scale of scaled dot-product attention."""
    return 1.0 / math.sqrt(d)


def measure(d: int, scale: float, n_queries: int, n_keys: int, generator: torch.Generator) -> dict[str, float]:
    """Score variance, mean softmax entropy (nats) and the gradient norm reaching the scores, for q, k ~ N(0, I)."""
    q = torch.randn(n_queries, d, generator=generator, dtype=torch.float64)
    k = torch.randn(n_keys, d, generator=generator, dtype=torch.float64)
    scores = (q @ k.T * scale).requires_grad_()  # (Nq, Nk)
    p = scores.softmax(-1)
    entropy = -(p * p.clamp_min(1e-300).log()).sum(-1).mean()
    upstream = torch.randn(n_queries, n_keys, generator=generator, dtype=torch.float64)  # dL/dp from a random loss
    (p * upstream).sum().backward()
    grad = scores.grad.norm(dim=-1).median()  # the typical query's ‖dL/dscores‖ (saturated ones get ~0)
    return {"variance": scores.var().item(), "entropy": entropy.item(), "grad": grad.item()}


def run(out: Path, *, quick: bool = False, scale: Callable[[int], float] = inverse_sqrt) -> Finding:
    """Sweep d; ``scale`` is the scaled arm's multiplier (a wrong one makes the claim fail)."""
    dims = [16, 32, 64, 128, 256, 512, 1024]
    n_queries, n_keys = (128, 128) if quick else (1024, 512)
    g = torch.Generator().manual_seed(0)
    rows = {
        d: {"scaled": measure(d, scale(d), n_queries, n_keys, g), "unscaled": measure(d, 1.0, n_queries, n_keys, g)}
        for d in dims
    }
    s = {d: rows[d]["scaled"] for d in dims}
    u = {d: rows[d]["unscaled"] for d in dims}
    entropies = [s[d]["entropy"] for d in dims]
    big, small = dims[-1], dims[0]
    checks = {
        "scaled variance stays ~1": all(0.8 < s[d]["variance"] < 1.25 for d in dims),
        "unscaled variance ~d": all(0.8 < u[d]["variance"] / d < 1.25 for d in dims),
        "scaled entropy flat (spread < 0.3 nats)": max(entropies) - min(entropies) < 0.3,
        "unscaled entropy collapses (< 1/4 of scaled at d=1024)": u[big]["entropy"] < 0.25 * s[big]["entropy"],
        "unscaled gradient shrinks 10x from d=16 to 1024": u[big]["grad"] < 0.1 * u[small]["grad"],
        "scaled gradient within 2x across d": max(s[d]["grad"] for d in dims) < 2 * min(s[d]["grad"] for d in dims),
    }
    with figure(out, "sqrt-d-scaling", ncols=3, width=3.4) as (a, b, c):
        for arm, style in (("scaled", "o-"), ("unscaled", "s--")):
            a.loglog(dims, [rows[d][arm]["variance"] for d in dims], style, label=arm)
            b.semilogx(dims, [rows[d][arm]["entropy"] for d in dims], style, label=arm)
            c.loglog(dims, [rows[d][arm]["grad"] for d in dims], style, label=arm)
        for ax, title in zip((a, b, c), ("score variance", "softmax entropy (nats)", "‖dL/dscores‖"), strict=True):
            ax.set_xlabel("head dimension d")
            ax.set_title(title)
        b.axhline(math.log(n_keys), color="grey", lw=0.8, ls=":")
        a.legend()
    numbers = {"dims": dims, "keys": n_keys, "by_dim": {str(d): rows[d] for d in dims}, "checks": checks}
    return Finding(all(checks.values()), numbers, [str(out / "sqrt-d-scaling.png")])
