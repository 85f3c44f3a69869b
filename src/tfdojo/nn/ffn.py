"""Position-wise feed-forward networks: the GELU MLP (GPT-2, BERT) and SwiGLU (Shazeer, 2020; Llama)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),  # exact erf form (BERT)
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's "gelu_new"
    "relu": F.relu,
    "silu": F.silu,
}


class MLP(nn.Module):
    """FFN(x) = W₂ act(W₁ x + b₁) + b₂, hidden width usually 4·d."""

    def __init__(self, dim: int, hidden: int, activation: str = "gelu", bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, hidden, bias=bias)
        self.proj = nn.Linear(hidden, dim, bias=bias)
        self.act = ACTIVATIONS[activation]

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.act(self.fc(x)))


class SwiGLU(nn.Module):
    """FFN(x) = W_down (silu(W_gate x) ⊙ W_up x): a gated linear unit with a Swish gate."""

    def __init__(self, dim: int, hidden: int, bias: bool = False) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=bias)
        self.up = nn.Linear(dim, hidden, bias=bias)
        self.down = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))
