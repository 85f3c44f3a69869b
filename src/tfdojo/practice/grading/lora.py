"""Low-rank adaptation of a frozen linear layer (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models").

    y = W x + b + (alpha / r) * B (A x)        W, b frozen; A (r, in), B (out, r) trained; B starts at zero

so training starts from the pretrained layer exactly, and only r * (in + out) numbers per layer are learnt and
shipped. ``merged`` folds the update into a plain ``nn.Linear`` for inference (no extra matmuls).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``rank`` update scaled by ``alpha / rank``."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float) -> None:
        super().__init__()
        if rank <= 0:
            raise ValueError(f"LoRA rank must be positive, got {rank}")
        self.base, self.scale = base, alpha / rank
        for p in base.parameters():
            p.requires_grad_(False)
        self.a = nn.Parameter(torch.empty(rank, base.in_features))  # (r, in)
        self.b = nn.Parameter(torch.zeros(base.out_features, rank))  # (out, r): the update starts at zero
        nn.init.kaiming_uniform_(self.a, a=math.sqrt(5))  # as nn.Linear initialises its weight

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + (x @ self.a.T @ self.b.T) * self.scale  # (..., out)

    def delta(self) -> Tensor:
        """The update to the weight, (out, in)."""
        return self.b @ self.a * self.scale

    def merged(self) -> nn.Linear:
        """A plain linear layer computing the same function (W + delta)."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.delta())
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out.requires_grad_(False)
