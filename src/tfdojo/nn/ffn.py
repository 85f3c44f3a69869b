"""Position-wise feed-forward networks.

MLP      W₂ act(W₁ x + b₁) + b₂                  GELU: GPT-2, BERT; ReLU²: Primer (So et al., 2021)
SwiGLU   W_down (silu(W_gate x) ⊙ W_up x)         Shazeer, 2020, "GLU Variants Improve Transformer"; Llama
GeGLU    W_down (gelu(W_gate x) ⊙ W_up x)         same paper; T5 v1.1, Gemma
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.errors import ConfigError

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": lambda x: F.gelu(x),  # exact erf form (BERT)
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),  # GPT-2's "gelu_new"
    "relu": F.relu,
    "relu2": lambda x: F.relu(x).square(),  # Primer's squared ReLU
    "silu": F.silu,
}


def get_activation(name: str) -> Callable[[Tensor], Tensor]:
    """Look up an activation by the name a config uses."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))}") from None


class MLP(nn.Module):
    """FFN(x) = W₂ act(W₁ x + b₁) + b₂, hidden width usually 4·d."""

    def __init__(self, dim: int, hidden: int, activation: str = "gelu", bias: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, hidden, bias=bias)
        self.proj = nn.Linear(hidden, dim, bias=bias)
        self.act = get_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.act(self.fc(x)))


class GatedFFN(nn.Module):
    """FFN(x) = W_down (act(W_gate x) ⊙ W_up x): a gated linear unit (Dauphin et al., 2017; Shazeer, 2020)."""

    def __init__(self, dim: int, hidden: int, activation: str, bias: bool = False) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=bias)
        self.up = nn.Linear(dim, hidden, bias=bias)
        self.down = nn.Linear(hidden, dim, bias=bias)
        self.act = get_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(self.act(self.gate(x)) * self.up(x))


class SwiGLU(GatedFFN):
    """FFN(x) = W_down (silu(W_gate x) ⊙ W_up x): a gated linear unit with a Swish gate (Llama, Mistral)."""

    def __init__(self, dim: int, hidden: int, bias: bool = False) -> None:
        super().__init__(dim, hidden, "silu", bias)


class GeGLU(GatedFFN):
    """FFN(x) = W_down (gelu(W_gate x) ⊙ W_up x); tanh-approximated GELU by default, as T5 v1.1 and Gemma use."""

    def __init__(self, dim: int, hidden: int, bias: bool = False, activation: str = "gelu_tanh") -> None:
        super().__init__(dim, hidden, activation, bias)


FfnKind = Literal["mlp", "swiglu", "geglu"]


def make_ffn(kind: FfnKind, dim: int, hidden: int, activation: str | None = None, bias: bool = False) -> nn.Module:
    """The FFN a config names; ``activation`` overrides the MLP's "gelu" (e.g. "relu2" for ReLU²) or GeGLU's GELU."""
    if kind == "mlp":
        return MLP(dim, hidden, activation or "gelu", bias)
    if kind == "swiglu":
        return SwiGLU(dim, hidden, bias)
    if kind == "geglu":
        return GeGLU(dim, hidden, bias, activation or "gelu_tanh")
    raise ConfigError(f"unknown feed-forward {kind!r}; use 'mlp', 'swiglu' or 'geglu'")
