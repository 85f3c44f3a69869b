"""Mutant: keeps the top-2 softmax probabilities as they are (Switch-style), without renormalising."""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def route_top2(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Weights do not sum to 1."""
    probs = torch.softmax(logits.double(), dim=-1)
    return probs.topk(2, dim=-1)


def load_balancing_loss(logits: Tensor) -> Tensor:
    """Correct loss."""
    probs = torch.softmax(logits.double(), dim=-1)
    chosen = F.one_hot(probs.topk(2, dim=-1).indices, logits.shape[-1]).sum(1).double()
    return logits.shape[-1] * (chosen.mean(0) * probs.mean(0)).sum()


def moe_forward(x: Tensor, router_weight: Tensor, experts: Sequence[Callable[[Tensor], Tensor]]) -> Tensor:
    """Correct dispatch around the wrong weights."""
    weights, chosen = route_top2(x @ router_weight.T)
    y = torch.zeros(x.shape, dtype=weights.dtype)
    for e, expert in enumerate(experts):
        token, slot = torch.nonzero(chosen == e, as_tuple=True)
        if token.numel():
            y = y.index_add(0, token, expert(x[token]).double() * weights[token, slot, None])
    return y.to(x.dtype)
