"""Normalisation layers: LayerNorm (Ba et al., 2016) and RMSNorm (Zhang & Sennrich, 2019)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError


class LayerNorm(nn.Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x²) + eps) * weight: LayerNorm without centring or bias, computed in fp32."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


NormKind = Literal["layernorm", "rmsnorm"]


def make_norm(kind: NormKind, dim: int, eps: float, bias: bool = True) -> nn.Module:
    """The norm a config names: "layernorm" (GPT-2, BERT; ``bias`` optional) or "rmsnorm" (Llama, Mistral, T5)."""
    if kind == "layernorm":
        return LayerNorm(dim, eps, bias)
    if kind == "rmsnorm":
        return RMSNorm(dim, eps)
    raise ConfigError(f"unknown norm {kind!r}; use 'layernorm' or 'rmsnorm'")
