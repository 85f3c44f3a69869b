"""Mutant: right values, but every expert runs on every token and a sparse weight matrix picks the results."""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def route_top2(logits: Tensor) -> tuple[Tensor, Tensor]:
    """Correct routing."""
    probs = torch.softmax(logits.double(), dim=-1)
    weights, experts = probs.topk(2, dim=-1)
    return weights / weights.sum(-1, keepdim=True), experts


def load_balancing_loss(logits: Tensor) -> Tensor:
    """Correct loss."""
    probs = torch.softmax(logits.double(), dim=-1)
    chosen = F.one_hot(probs.topk(2, dim=-1).indices, logits.shape[-1]).sum(1).double()
    return logits.shape[-1] * (chosen.mean(0) * probs.mean(0)).sum()


def moe_forward(x: Tensor, router_weight: Tensor, experts: Sequence[Callable[[Tensor], Tensor]]) -> Tensor:
    """Dense: E times the expert FLOPs of a sparse layer."""
    weights, chosen = route_top2(x @ router_weight.T)
    gates = torch.zeros(x.shape[0], len(experts), dtype=weights.dtype).scatter(1, chosen, weights)  # (N, E)
    outputs = torch.stack([expert(x).double() for expert in experts], dim=1)  # (N, E, D)
    return (gates.unsqueeze(-1) * outputs).sum(1).to(x.dtype)
