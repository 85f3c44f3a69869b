"""Top-2 MoE: Mixtral routing, the Switch load-balancing loss, and sparse dispatch to the experts."""

from collections.abc import Callable, Sequence

from torch import Tensor


def route_top2(logits: Tensor) -> tuple[Tensor, Tensor]:
    """(N, E) router logits -> weights (N, 2) summing to 1 per token, expert indices (N, 2)."""
    raise NotImplementedError


def load_balancing_loss(logits: Tensor) -> Tensor:
    """E · Σ_e f_e P_e for top-2 routing (f_e: fraction of tokens choosing e, P_e: mean probability of e)."""
    raise NotImplementedError


def moe_forward(x: Tensor, router_weight: Tensor, experts: Sequence[Callable[[Tensor], Tensor]]) -> Tensor:
    """x (N, D) -> (N, D): each token's two experts, weighted by the renormalised router probabilities."""
    raise NotImplementedError
