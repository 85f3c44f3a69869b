"""Induction heads (Olsson et al., 2022): on a repeated random token sequence, heads that attend to the token
after the previous occurrence of the current one let SmolLM2 copy the second half; ablating the top induction
heads undoes much of that gain, far more than ablating as many other heads."""

from __future__ import annotations

from pathlib import Path

import torch

from tfdojo.lab.figures import figure
from tfdojo.lab.probe import ablated_heads, attention_maps, next_token_loss, smollm
from tfdojo.lab.result import Finding
from tfdojo.loading import one_thread


def second_copy_loss(model: torch.nn.Module, ids: torch.Tensor, half: int) -> float:
    """Mean next-token loss over the second copy (predicting tokens half+1 … 2·half-1)."""
    return next_token_loss(model(ids), ids)[:, half:].mean().item()


@torch.no_grad()
@one_thread()  # small forwards: at load ~4 on 2 cores two threads made the quick run 14 s, one 6.5 s
def run(out: Path, *, quick: bool = False, top: int = 10) -> Finding:
    """Induction score = attention from position i of copy 2 to i - half + 1; ablate the ``top`` heads."""
    model = smollm().model
    batch, half = (2, 24) if quick else (8, 64)
    g = torch.Generator().manual_seed(0)
    first = torch.randint(1000, 40000, (batch, half), generator=g)  # ordinary vocabulary, no special tokens
    ids = torch.cat((first, first), 1)  # (B, 2·half)
    maps = attention_maps(model, ids)  # (L, B, H, T, T)
    queries = torch.arange(half, 2 * half)
    score = maps[:, :, :, queries, queries - half + 1].mean((1, 3))  # (L, H)
    losses = next_token_loss(model(ids), ids)  # (B, T-1)
    loss_first, loss_second = losses[:, : half - 1].mean().item(), losses[:, half:].mean().item()
    n_heads = score.shape[1]
    order = score.flatten().argsort(descending=True).tolist()
    top_heads = [divmod(i, n_heads) for i in order[:top]]
    others = order[top:]
    pick = torch.randperm(len(others), generator=g)[:top].tolist()
    random_heads = [divmod(others[i], n_heads) for i in pick]
    with ablated_heads(model, top_heads):
        loss_top = second_copy_loss(model, ids, half)
    with ablated_heads(model, random_heads):
        loss_random = second_copy_loss(model, ids, half)
    rise_top, rise_random = loss_top - loss_second, loss_random - loss_second
    checks = {
        "second copy loss < 1/3 of first": loss_second < loss_first / 3,
        "some head has induction score > 0.4": score.max().item() > 0.4,
        f"ablating top {top} raises loss > 3x ablating {top} others": rise_top > 3 * max(rise_random, 0.01),
    }
    with figure(out, "induction-heads", ncols=2) as (a, b):
        image = a.imshow(score.T.numpy(), aspect="auto", cmap="magma", vmin=0, vmax=1)
        a.set_xlabel("layer")
        a.set_ylabel("head")
        a.set_title("induction score")
        a.figure.colorbar(image, ax=a)
        labels = ["copy 1", "copy 2", f"copy 2,\ntop {top} off", f"copy 2,\n{top} others off"]
        b.bar(
            labels, [loss_first, loss_second, loss_top, loss_random], color=["grey", "tab:blue", "tab:red", "tab:olive"]
        )
        b.set_ylabel("next-token loss (nats)")
    numbers = {
        "batch": batch,
        "half": half,
        "loss": {
            "first_copy": loss_first,
            "second_copy": loss_second,
            "top_ablated": loss_top,
            "random_ablated": loss_random,
        },
        "top_heads": [{"layer": layer, "head": head, "score": score[layer, head].item()} for layer, head in top_heads],
        "random_heads": [list(h) for h in random_heads],
        "induction_score": score.tolist(),
        "checks": checks,
    }
    return Finding(all(checks.values()), numbers, [str(out / "induction-heads.png")])
