"""Transformer blocks: attention and feed-forward sublayers around residual connections.

    pre-LN  (GPT-2, Llama):  x = x + Attn(Norm₁(x));   x = x + FFN(Norm₂(x))
    post-LN (BERT, 2017):    x = Norm₁(x + Attn(x));   x = Norm₂(x + FFN(x))

Pre-LN keeps an identity path from input to output, which is why deep stacks train without warm-up
tricks (Xiong et al., 2020, "On Layer Normalization in the Transformer Architecture").
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class PreNormBlock(nn.Module):
    """x + Attn(Norm₁(x)), then x + FFN(Norm₂(x))."""

    def __init__(self, attn: nn.Module, ffn: nn.Module, norm1: nn.Module, norm2: nn.Module) -> None:
        super().__init__()
        self.attn, self.ffn, self.norm1, self.norm2 = attn, ffn, norm1, norm2

    def forward(self, x: Tensor, **attn_kwargs: Any) -> Tensor:
        x = x + self.attn(self.norm1(x), **attn_kwargs)
        return x + self.ffn(self.norm2(x))


class PostNormBlock(nn.Module):
    """Norm₁(x + Attn(x)), then Norm₂(x + FFN(x))."""

    def __init__(self, attn: nn.Module, ffn: nn.Module, norm1: nn.Module, norm2: nn.Module) -> None:
        super().__init__()
        self.attn, self.ffn, self.norm1, self.norm2 = attn, ffn, norm1, norm2

    def forward(self, x: Tensor, **attn_kwargs: Any) -> Tensor:
        x = self.norm1(x + self.attn(x, **attn_kwargs))
        return self.norm2(x + self.ffn(x))
