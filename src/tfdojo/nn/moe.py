"""Sparse Mixture of Experts: a router sends each token to its top-k of E feed-forward experts.

    logits = x W_rᵀ                      (N, E)       one score per expert
    p      = softmax(logits)                          over all E experts
    w, e   = top-k(p)                    (N, k)       renormalised to sum to 1 (Mixtral) or kept as is (Switch)
    y_n    = Σ_j w_nj · FFN_{e_nj}(x_n)

Shazeer et al., 2017 ("Outrageously Large Neural Networks"); Fedus et al., 2021 (Switch Transformer);
Jiang et al., 2024 (Mixtral). Dispatch is vectorised, with no Python loop over tokens or experts:

    assignments (token, expert), first choices of every token before any second choice
      -> position in its expert's queue = running count of that expert (a cumsum over one-hot rows)
      -> slot = expert · C + position; positions ≥ C are dropped (capacity C)
      -> gather tokens into an (E, C, dim) buffer; three batched matmuls run all experts at once
      -> read each assignment's slot back, weight it, sum the k choices of every token

With ``capacity_factor`` set, C = ⌈factor · N · k / E⌉ and assignments beyond it get no expert output (the
token keeps its residual path only). Without it the layer is dropless: C = N, enough for any routing, at the
price of padding every expert to N slots (E/k times the FLOPs of the tokens actually routed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.nn.ffn import get_activation


@dataclass
class MoEAux:
    """What a MoE layer reports besides its output; the losses are unweighted (scale them in the training loss)."""

    load_balancing_loss: Tensor  # () Switch/Mixtral auxiliary loss, top_k when routing is perfectly uniform
    z_loss: Tensor  # () ST-MoE router z-loss, mean of logsumexp(logits)²
    router_logits: Tensor  # (N, E) for the N tokens of this call, flattened in (B, T) order
    dropped: Tensor  # () int64: (token, expert) assignments dropped for capacity (tokens, when top_k = 1)


def load_balancing_loss(router_logits: Tensor, top_k: int, token_mask: Tensor | None = None) -> Tensor:
    """E · Σ_e f_e · P_e (Fedus et al., 2021, eqs. 4-6, in Mixtral's top-k form).

    f_e is the fraction of tokens that chose expert e among their top-k (so Σ f_e = k), P_e the mean router
    probability of e. Pass logits of several layers concatenated to get HF's whole-model loss; ``token_mask``
    (N,) leaves padding out.
    """
    n_experts = router_logits.shape[-1]
    probs = torch.softmax(router_logits.float(), dim=-1)  # (N, E)
    chosen = F.one_hot(probs.topk(top_k, dim=-1).indices, n_experts).sum(1).float()  # (N, k, E) -> (N, E)
    weight = torch.ones_like(probs[:, 0]) if token_mask is None else token_mask.float()  # (N,)
    total = weight.sum()
    tokens_per_expert = (chosen * weight[:, None]).sum(0) / total  # (E,)
    prob_per_expert = (probs * weight[:, None]).sum(0) / total  # (E,)
    return n_experts * (tokens_per_expert * prob_per_expert).sum()


def router_z_loss(router_logits: Tensor) -> Tensor:
    """(1/N) Σ_n logsumexp(logits_n)²: keeps router logits small (Zoph et al., 2022, "ST-MoE", eq. 5)."""
    return torch.logsumexp(router_logits.float(), dim=-1).square().mean()


class Experts(nn.Module):
    """E gated FFNs (SwiGLU by default) held as stacked weights so that all of them run as batched matmuls.

    ``gate`` and ``up`` are (E, hidden, dim), ``down`` is (E, dim, hidden): expert e's nn.Linear weights, stacked.
    """

    def __init__(self, dim: int, hidden: int, n_experts: int, activation: str = "silu") -> None:
        super().__init__()
        self.act = get_activation(activation)
        self.gate = nn.Parameter(torch.empty(n_experts, hidden, dim))
        self.up = nn.Parameter(torch.empty(n_experts, hidden, dim))
        self.down = nn.Parameter(torch.empty(n_experts, dim, hidden))
        for weight in (self.gate, self.up, self.down):  # nn.Linear's default scale, U(±1/√fan_in)
            bound = 1 / math.sqrt(weight.shape[-1])
            nn.init.uniform_(weight, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """x (E, C, dim): row e goes through expert e -> (E, C, dim)."""
        hidden = self.act(torch.bmm(x, self.gate.transpose(1, 2))) * torch.bmm(x, self.up.transpose(1, 2))
        return torch.bmm(hidden, self.down.transpose(1, 2))  # (E, C, hidden) @ (E, hidden, dim)


class MoE(nn.Module):
    """x (..., dim) -> (y (..., dim), MoEAux): top-k routed experts with optional capacity and token dropping.

    ``renormalize=True`` is Mixtral's routing (softmax over all experts, top-k, weights rescaled to sum to 1);
    ``False`` with ``top_k=1`` is Switch's (the chosen expert's probability multiplies its output).
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        n_experts: int,
        top_k: int,
        capacity_factor: float | None = None,
        *,
        renormalize: bool = True,
        activation: str = "silu",
    ) -> None:
        super().__init__()
        if not 0 < top_k <= n_experts:
            raise ConfigError(f"top_k must be in 1..n_experts ({n_experts}), got {top_k}")
        if capacity_factor is not None and capacity_factor <= 0:
            raise ConfigError(f"capacity_factor must be positive (or None for dropless), got {capacity_factor}")
        self.n_experts, self.top_k = n_experts, top_k
        self.capacity_factor, self.renormalize = capacity_factor, renormalize
        self.router = nn.Linear(dim, n_experts, bias=False)
        self.experts = Experts(dim, hidden, n_experts, activation)

    def capacity(self, n_tokens: int) -> int:
        """Slots per expert for a call of ``n_tokens``: ⌈factor · N · k / E⌉, or N when dropless."""
        if self.capacity_factor is None:
            return n_tokens
        return min(n_tokens, math.ceil(self.capacity_factor * n_tokens * self.top_k / self.n_experts))

    def route(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        """Router logits (N, E) -> top-k weights (N, k) in fp32 and expert indices (N, k)."""
        probs = torch.softmax(logits.float(), dim=-1)  # (N, E)
        weights, experts = probs.topk(self.top_k, dim=-1)  # (N, k)
        if self.renormalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights, experts

    def forward(self, x: Tensor) -> tuple[Tensor, MoEAux]:
        dim = x.shape[-1]
        tokens = x.reshape(-1, dim)  # (N, dim)
        n, k, n_experts = tokens.shape[0], self.top_k, self.n_experts
        logits = self.router(tokens)  # (N, E)
        weights, experts = self.route(logits)
        capacity = self.capacity(n)

        expert_of = experts.t().reshape(-1)  # (k·N,) choice-major: every first choice, then every second, ...
        token_of = torch.arange(n, device=x.device).repeat(k)  # (k·N,) the token of each assignment
        one_hot = F.one_hot(expert_of, n_experts)  # (k·N, E)
        position = (one_hot.cumsum(0) * one_hot).sum(-1) - 1  # (k·N,) place in its expert's queue
        kept = position < capacity
        overflow = n_experts * capacity  # one spare slot that collects every dropped assignment
        slot = torch.where(kept, expert_of * capacity + position, overflow)  # (k·N,)

        # Which token fills each slot; empty slots point at a zero row appended after the N tokens.
        slot_token = torch.full((overflow + 1,), n, dtype=torch.long, device=x.device)
        slot_token = slot_token.scatter(0, slot, token_of)[:overflow]  # (E·C,)
        padded = torch.cat((tokens, tokens.new_zeros(1, dim)))  # (N + 1, dim)
        expert_in = padded[slot_token].view(n_experts, capacity, dim)  # (E, C, dim)
        expert_out = self.experts(expert_in).reshape(overflow, dim)  # (E·C, dim)

        results = torch.cat((expert_out, expert_out.new_zeros(1, dim)))[slot]  # (k·N, dim), dropped -> 0
        gate = weights.t().reshape(-1, 1)  # (k·N, 1), same choice-major order as ``slot``
        y = (results.float() * gate).to(x.dtype).view(k, n, dim).sum(0)  # (N, dim)
        aux = MoEAux(
            load_balancing_loss=load_balancing_loss(logits, k),
            z_loss=router_z_loss(logits),
            router_logits=logits,
            dropped=(~kept).sum(),
        )
        return y.view(x.shape), aux


class RoutedFFN(nn.Module):
    """A MoE used as a block's FFN: returns only y and keeps its last router logits (N, E) for the aux losses."""

    def __init__(self, moe: MoE) -> None:
        super().__init__()
        self.moe = moe
        self.router_logits: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        y, aux = self.moe(x)
        self.router_logits = aux.router_logits
        return y
