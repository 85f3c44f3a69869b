"""Top-2 MoE: Mixtral routing, the Switch load-balancing loss, and sparse dispatch to the experts."""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def route_top2(logits: Tensor) -> tuple[Tensor, Tensor]:
    """(N, E) router logits -> weights (N, 2) summing to 1 per token, expert indices (N, 2)."""
    probs = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)  # (N, E)
    weights, experts = probs.topk(2, dim=-1)  # (N, 2), largest first
    return weights / weights.sum(-1, keepdim=True), experts


def load_balancing_loss(logits: Tensor) -> Tensor:
    """E · Σ_e f_e P_e for top-2 routing (f_e: fraction of tokens choosing e, P_e: mean probability of e)."""
    n_experts = logits.shape[-1]
    probs = torch.softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=-1)  # (N, E)
    chosen = F.one_hot(probs.topk(2, dim=-1).indices, n_experts).sum(1).to(probs.dtype)  # (N, E) 0/1
    return n_experts * (chosen.mean(0) * probs.mean(0)).sum()


def moe_forward(x: Tensor, router_weight: Tensor, experts: Sequence[Callable[[Tensor], Tensor]]) -> Tensor:
    """x (N, D) -> (N, D): each token's two experts, weighted by the renormalised router probabilities."""
    weights, chosen = route_top2(x @ router_weight.T)  # (N, 2), (N, 2)
    y = torch.zeros(x.shape, dtype=weights.dtype, device=x.device)
    for e, expert in enumerate(experts):
        token, slot = torch.nonzero(chosen == e, as_tuple=True)  # the tokens that picked e, and as which choice
        if token.numel() == 0:
            continue
        out = expert(x[token])  # (n_e, D) only the routed tokens
        y = y.index_add(0, token, out.to(y.dtype) * weights[token, slot, None])
    return y.to(x.dtype)
