"""Transformer blocks: attention and feed-forward sublayers around residual connections.

    pre-LN  (GPT-2, Llama):  x = x + Attn(Norm₁(x));   x = x + FFN(Norm₂(x))
    post-LN (BERT, 2017):    x = Norm₁(x + Attn(x));   x = Norm₂(x + FFN(x))
    sandwich (Gemma 2):      x = x + Post₁(Attn(Norm₁(x)));   x = x + Post₂(FFN(Norm₂(x)))

Pre-LN keeps an identity path from input to output, which is why deep stacks train without warm-up
tricks (Xiong et al., 2020, "On Layer Normalization in the Transformer Architecture"). The sandwich adds a
norm on each sublayer's output too, so no sublayer can blow up the residual stream (Ding et al., 2021, "CogView").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from torch import Tensor, nn

from tfdojo.errors import ConfigError


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


class SandwichNormBlock(nn.Module):
    """x + Post₁(Attn(Norm₁(x))), then x + Post₂(FFN(Norm₂(x))): pre- and post-norm on every sublayer."""

    def __init__(
        self,
        attn: nn.Module,
        ffn: nn.Module,
        norm1: nn.Module,
        norm2: nn.Module,
        post_norm1: nn.Module,
        post_norm2: nn.Module,
    ) -> None:
        super().__init__()
        self.attn, self.ffn, self.norm1, self.norm2 = attn, ffn, norm1, norm2
        self.post_norm1, self.post_norm2 = post_norm1, post_norm2

    def forward(self, x: Tensor, **attn_kwargs: Any) -> Tensor:
        x = x + self.post_norm1(self.attn(self.norm1(x), **attn_kwargs))
        return x + self.post_norm2(self.ffn(self.norm2(x)))


BlockLayout = Literal["pre", "post", "sandwich"]


def make_block(layout: BlockLayout, attn: nn.Module, ffn: nn.Module, norm: Callable[[], nn.Module]) -> nn.Module:
    """The block a config's layout names, with fresh norms from ``norm()`` (two, or four for the sandwich)."""
    if layout == "pre":
        return PreNormBlock(attn, ffn, norm(), norm())
    if layout == "post":
        return PostNormBlock(attn, ffn, norm(), norm())
    if layout == "sandwich":
        return SandwichNormBlock(attn, ffn, norm(), norm(), norm(), norm())
    raise ConfigError(f"unknown block layout {layout!r}; use 'pre', 'post' or 'sandwich'")
