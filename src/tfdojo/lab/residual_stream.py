"""Norm growth of the pre-LN residual stream (Xiong et al., 2020): every block adds to the stream and nothing
normalises it, so its norm grows with depth; the final norm rescales every token to a common size before the
unembedding. SmolLM2's first token carries a far larger norm (the massive activation behind attention sinks)."""

from __future__ import annotations

from pathlib import Path

import torch

from tfdojo.lab.figures import figure
from tfdojo.lab.probe import smollm, text_stream
from tfdojo.lab.result import Finding


@torch.no_grad()
def run(out: Path, *, quick: bool = False) -> Finding:
    """Per-block token norms (first token apart) and the spread of norms before and after the final RMSNorm."""
    model = smollm().model
    _ids, states, _logits = text_stream(64 if quick else 512)
    norms = [x[0, 1:].norm(dim=-1) for x in states]  # [(T-1,)] per block, first token excluded
    mean_norm = [n.mean().item() for n in norms]
    first_token = [x[0, 0].norm().item() for x in states]
    last = states[-1][0]  # (T, dim)
    before = last.norm(dim=-1)  # (T,)
    after = model.norm(last).norm(dim=-1)
    spread_before = (before.max() / before.min()).item()
    spread_after = (after.max() / after.min()).item()
    rises = sum(b > a for a, b in zip(mean_norm[1:], mean_norm[2:], strict=False)) / (len(mean_norm) - 2)
    checks = {
        "norm grows > 5x from block 1 to the last": mean_norm[-1] > 5 * mean_norm[1],
        "norm rises at >= 80% of blocks": rises >= 0.8,
        "first token's norm > 10x the others' somewhere": max(
            f / m for f, m in zip(first_token, mean_norm, strict=True)
        )
        > 10,
        "final norm shrinks the max/min token-norm ratio 3x": spread_after * 3 < spread_before,
    }
    with figure(out, "residual-stream", ncols=2) as (a, b):
        a.semilogy(range(len(states)), mean_norm, "o-", markersize=3, label="tokens 2…T (mean)")
        a.semilogy(range(len(states)), first_token, "s--", markersize=3, label="first token")
        a.set_xlabel("block (0 = embedding)")
        a.set_ylabel("‖residual‖₂")
        a.legend()
        b.hist(before.log10().numpy(), bins=30, alpha=0.6, label="before final norm")
        b.hist(after.log10().numpy(), bins=30, alpha=0.6, label="after final norm")
        b.set_xlabel("log10 ‖token‖ at the last block")
        b.legend()
    numbers = {
        "tokens": int(last.shape[0]),
        "mean_norm": mean_norm,
        "first_token_norm": first_token,
        "fraction_of_blocks_rising": rises,
        "token_norm_max_over_min": {"before_final_norm": spread_before, "after_final_norm": spread_after},
        "checks": checks,
    }
    return Finding(all(checks.values()), numbers, [str(out / "residual-stream.png")])
