"""Transformer blocks: attention and feed-forward sublayers around residual connections.

    pre-LN  (GPT-2, Llama):  x = x + Attn(Norm₁(x));   x = x + FFN(Norm₂(x))
    post-LN (BERT, 2017):    x = Norm₁(x + Attn(x));   x = Norm₂(x + FFN(x))
    sandwich (Gemma 2):      x = x + Post₁(Attn(Norm₁(x)));   x = x + Post₂(FFN(Norm₂(x)))

With ``dropout`` p > 0 each sublayer's output is dropped just before it joins the residual stream, as in GPT-2 and
nanoGPT (``resid_dropout``) and the original Transformer ("residual dropout", Vaswani et al., 2017, §5.4).

Pre-LN keeps an identity path from input to output, which is why deep stacks train without warm-up
tricks (Xiong et al., 2020, "On Layer Normalization in the Transformer Architecture"). The sandwich adds a
norm on each sublayer's output too, so no sublayer can blow up the residual stream (Ding et al., 2021, "CogView").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.nn.dropout import make_dropout


class PreNormBlock(nn.Module):
    """x + Drop(Attn(Norm₁(x))), then x + Drop(FFN(Norm₂(x)))."""

    def __init__(
        self, attn: nn.Module, ffn: nn.Module, norm1: nn.Module, norm2: nn.Module, *, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.attn, self.ffn, self.norm1, self.norm2 = attn, ffn, norm1, norm2
        self.drop1, self.drop2 = make_dropout(dropout), make_dropout(dropout)

    def forward(self, x: Tensor, **attn_kwargs: Any) -> Tensor:
        x = x + self.drop1(self.attn(self.norm1(x), **attn_kwargs))
        return x + self.drop2(self.ffn(self.norm2(x)))


class PostNormBlock(nn.Module):
    """Norm₁(x + Drop(Attn(x))), then Norm₂(x + Drop(FFN(x)))."""

    def __init__(
        self, attn: nn.Module, ffn: nn.Module, norm1: nn.Module, norm2: nn.Module, *, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.attn, self.ffn, self.norm1, self.norm2 = attn, ffn, norm1, norm2
        self.drop1, self.drop2 = make_dropout(dropout), make_dropout(dropout)

    def forward(self, x: Tensor, **attn_kwargs: Any) -> Tensor:
        x = self.norm1(x + self.drop1(self.attn(x, **attn_kwargs)))
        return self.norm2(x + self.drop2(self.ffn(x)))


class SandwichNormBlock(nn.Module):
    """x + Drop(Post₁(Attn(Norm₁(x)))), then x + Drop(Post₂(FFN(Norm₂(x)))): pre- and post-norm on every sublayer."""

    def __init__(
        self,
        attn: nn.Module,
        ffn: nn.Module,
        norm1: nn.Module,
        norm2: nn.Module,
        post_norm1: nn.Module,
        post_norm2: nn.Module,
        *,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.attn, self.ffn, self.norm1, self.norm2 = attn, ffn, norm1, norm2
        self.post_norm1, self.post_norm2 = post_norm1, post_norm2
        self.drop1, self.drop2 = make_dropout(dropout), make_dropout(dropout)

    def forward(self, x: Tensor, **attn_kwargs: Any) -> Tensor:
        x = x + self.drop1(self.post_norm1(self.attn(self.norm1(x), **attn_kwargs)))
        return x + self.drop2(self.post_norm2(self.ffn(self.norm2(x))))


BlockLayout = Literal["pre", "post", "sandwich"]


def make_block(
    layout: BlockLayout, attn: nn.Module, ffn: nn.Module, norm: Callable[[], nn.Module], *, dropout: float = 0.0
) -> nn.Module:
    """The block a config's layout names, with fresh norms from ``norm()`` (two, or four for the sandwich)."""
    if layout == "pre":
        return PreNormBlock(attn, ffn, norm(), norm(), dropout=dropout)
    if layout == "post":
        return PostNormBlock(attn, ffn, norm(), norm(), dropout=dropout)
    if layout == "sandwich":
        return SandwichNormBlock(attn, ffn, norm(), norm(), norm(), norm(), dropout=dropout)
    raise ConfigError(f"unknown block layout {layout!r}; use 'pre', 'post' or 'sandwich'")
