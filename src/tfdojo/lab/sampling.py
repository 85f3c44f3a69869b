"""Temperature, top-p (Holtzman et al., 2020) and min-p (Nguyen et al., 2024) trade diversity for safety: on
SmolLM2's next-token distributions over held-out text, entropy rises with temperature, p and falling min-p, the
true next token is best predicted near temperature 1, and truncation drops some true tokens."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from tfdojo.infer.sampling import top_p_filter
from tfdojo.lab.figures import figure
from tfdojo.lab.probe import text_stream
from tfdojo.lab.result import Finding


def min_p_filter(logits: Tensor, min_p: float) -> Tensor:
    """Keep tokens whose probability is at least ``min_p`` times the top token's; -inf the rest."""
    probs = logits.softmax(-1)
    return logits.masked_fill(probs < min_p * probs.max(-1, keepdim=True).values, float("-inf"))


def describe(logits: Tensor, targets: Tensor) -> dict[str, float]:
    """Entropy (nats), share of true next tokens kept, and perplexity over the kept ones."""
    logp = logits.log_softmax(-1)  # (T, V), -inf where filtered
    p = logp.exp()
    entropy = -(p * logp.nan_to_num(neginf=0.0)).sum(-1).mean().item()
    true = logp.gather(-1, targets[:, None])[:, 0]  # (T,)
    kept = true.isfinite()
    return {
        "entropy": entropy,
        "coverage": kept.float().mean().item(),
        "perplexity_kept": math.exp(-true[kept].mean().item()),
    }


@torch.no_grad()
def run(out: Path, *, quick: bool = False) -> Finding:
    """Sweep each knob on the same distributions (one SmolLM2 forward)."""
    ids, _states, logits = text_stream(64 if quick else 512)
    logits, targets = logits[0, :-1].double(), ids[0, 1:]  # (T-1, V), (T-1,)
    temperatures = [0.3, 0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0]
    top_ps = [0.3, 0.5, 0.7, 0.9, 0.95, 1.0]
    min_ps = [0.3, 0.2, 0.1, 0.05, 0.02, 0.0]
    by_t = [describe(logits / t, targets) for t in temperatures]
    by_p = [describe(top_p_filter(logits, p) if p < 1 else logits, targets) for p in top_ps]
    by_min_p = [describe(min_p_filter(logits, m), targets) for m in min_ps]

    def rising(rows: list[dict[str, float]], key: str) -> bool:
        return all(b[key] >= a[key] - 1e-9 for a, b in zip(rows, rows[1:], strict=False))

    best_t = temperatures[min(range(len(temperatures)), key=lambda i: by_t[i]["perplexity_kept"])]
    checks = {
        "entropy rises with temperature": rising(by_t, "entropy"),
        "entropy and coverage rise with top-p": rising(by_p, "entropy") and rising(by_p, "coverage"),
        "entropy and coverage rise as min-p falls": rising(by_min_p, "entropy") and rising(by_min_p, "coverage"),
        "held-out perplexity is lowest at 0.85 <= T <= 1.2": 0.85 <= best_t <= 1.2,
        "top-p 0.5 drops > 10% of true tokens": by_p[1]["coverage"] < 0.9,
    }
    with figure(out, "sampling", ncols=2) as (a, b):
        a.plot(temperatures, [r["entropy"] for r in by_t], "o-", label="entropy (nats)")
        a.plot(temperatures, [math.log(r["perplexity_kept"]) for r in by_t], "s--", label="held-out NLL")
        a.set_xlabel("temperature")
        a.legend()
        b.plot([r["entropy"] for r in by_p], [r["coverage"] for r in by_p], "o-", label="top-p")
        b.plot([r["entropy"] for r in by_min_p], [r["coverage"] for r in by_min_p], "s-", label="min-p")
        b.set_xlabel("entropy of the sampling distribution (nats)")
        b.set_ylabel("true next token kept")
        b.legend()
    numbers = {
        "positions": int(targets.shape[0]),
        "temperature": dict(zip(map(str, temperatures), by_t, strict=True)),
        "top_p": dict(zip(map(str, top_ps), by_p, strict=True)),
        "min_p": dict(zip(map(str, min_ps), by_min_p, strict=True)),
        "best_temperature": best_t,
        "checks": checks,
    }
    return Finding(all(checks.values()), numbers, [str(out / "sampling.png")])
