"""The logit lens (nostalgebraist, 2020): decode the residual stream after every block with the final norm and
the unembedding. In SmolLM2 the intermediate guesses agree with the final prediction more and more with depth;
the answer is assembled late, not read off early."""

from __future__ import annotations

from pathlib import Path

import torch

from tfdojo.lab.figures import figure
from tfdojo.lab.probe import smollm, text_stream
from tfdojo.lab.result import Finding


def spearman(values: list[float]) -> float:
    """Rank correlation of ``values`` with their index (1 = strictly increasing)."""
    ranks = torch.tensor(values).argsort().argsort().double()
    index = torch.arange(len(values), dtype=torch.float64)
    return torch.corrcoef(torch.stack((ranks, index)))[0, 1].item()


@torch.no_grad()
def run(out: Path, *, quick: bool = False) -> Finding:
    """Top-1 agreement and KL(final ‖ layer) of every layer's decoded stream, over held-out text."""
    model = smollm().model
    _ids, states, logits = text_stream(64 if quick else 512)
    final = logits[0].log_softmax(-1)  # (T, V)
    agreement, kl = [], []
    for x in states:  # embedding output, then each block's output
        lens = model.lm_head(model.norm(x[0])).log_softmax(-1)  # (T, V)
        agreement.append((lens.argmax(-1) == final.argmax(-1)).float().mean().item())
        kl.append((final.exp() * (final - lens)).sum(-1).mean().item())
    blocks = len(states) - 1
    checks = {
        "the last block decodes to the final prediction": agreement[-1] == 1.0,
        "first half of the blocks agree < 20%": max(agreement[: blocks // 2]) < 0.2,
        "the block before last agrees > 30%": agreement[-2] > 0.3,
        "agreement rises with depth (Spearman > 0.8)": spearman(agreement) > 0.8,
        "KL at the block before last < half the first half's best": kl[-2] < 0.5 * min(kl[: blocks // 2 + 1]),
    }
    with figure(out, "logit-lens", ncols=2) as (a, b):
        a.plot(range(blocks + 1), agreement, "o-", markersize=3)
        a.set_ylabel("top-1 agreement with final")
        b.semilogy(range(blocks + 1), kl, "o-", markersize=3, color="tab:red")
        b.set_ylabel("KL(final ‖ lens), nats")
        for ax in (a, b):
            ax.set_xlabel("block (0 = embedding)")
    numbers = {"tokens": int(final.shape[0]), "agreement": agreement, "kl": kl, "checks": checks}
    return Finding(all(checks.values()), numbers, [str(out / "logit-lens.png")])
