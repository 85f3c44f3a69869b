"""Vision Transformer (Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words"): an image as a sequence of patches.

    pixels (B, C, H, W) --conv k=p, stride=p--> patches (B, N, d),  N = (H/p)·(W/p)
    [CLS] + patches + learned positions  ->  pre-LN encoder blocks  ->  final LayerNorm  ->  (B, 1 + N, d)

The positions are learned for one grid (``pos_grid`` × ``pos_grid``); an image with a different grid gets them
resized bicubically, the way DINOv2 runs its 37 × 37 table at 224 px. ``layer_scale`` multiplies each sublayer's
output by a learned per-channel vector before the residual add (Touvron et al., 2021, "Going deeper with Image
Transformers"; used by DINOv2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.nn.blocks import PreNormBlock
from tfdojo.nn.ffn import ACTIVATIONS, MLP
from tfdojo.nn.norms import LayerNorm
from tfdojo.nn.self_attention import Attention


@dataclass
class ViTConfig:
    """Hyper-parameters of a ViT encoder; defaults are ViT-B/16 at 224 px. ``pos_grid`` defaults to image/patch."""

    image_size: int = 224
    patch_size: int = 16
    channels: int = 3
    dim: int = 768
    n_layers: int = 12
    n_heads: int = 12
    ffn_hidden: int = 3072
    norm_eps: float = 1e-12
    activation: str = "gelu"
    qkv_bias: bool = True
    layer_scale: bool = False
    pos_grid: int | None = None
    attention_backend: str = "sdpa"

    def __post_init__(self) -> None:
        sizes = (
            self.image_size,
            self.patch_size,
            self.channels,
            self.dim,
            self.n_layers,
            self.n_heads,
            self.ffn_hidden,
        )
        if min(sizes) <= 0:
            raise ConfigError(f"sizes must be positive: {self}")
        if self.dim % self.n_heads:
            raise ConfigError(f"dim ({self.dim}) is not divisible by n_heads ({self.n_heads})")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if self.pos_grid is None:
            if self.image_size % self.patch_size:
                raise ConfigError(f"image_size ({self.image_size}) is not a multiple of patch_size ({self.patch_size})")
            self.pos_grid = self.image_size // self.patch_size


class LayerScale(nn.Module):
    """Wraps a sublayer and scales its output per channel: f(x) ⊙ γ, γ learned (CaiT, Touvron et al. 2021)."""

    def __init__(self, inner: nn.Module, dim: int) -> None:
        super().__init__()
        self.inner = inner
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor, **kwargs: Any) -> Tensor:
        return self.inner(x, **kwargs) * self.gamma


class ViT(nn.Module):
    """pixel_values (B, C, H, W) -> last hidden state (B, 1 + N, dim); token 0 is [CLS]."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = c = config
        self.patch_embed = nn.Conv2d(c.channels, c.dim, kernel_size=c.patch_size, stride=c.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + c.pos_grid**2, c.dim))
        self.layers = nn.ModuleList(self._block(c) for _ in range(c.n_layers))
        self.norm = LayerNorm(c.dim, c.norm_eps)

    @staticmethod
    def _block(c: ViTConfig) -> PreNormBlock:
        attn: nn.Module = Attention(c.dim, c.n_heads, qkv_bias=c.qkv_bias, out_bias=True, backend=c.attention_backend)
        ffn: nn.Module = MLP(c.dim, c.ffn_hidden, c.activation)
        if c.layer_scale:
            attn, ffn = LayerScale(attn, c.dim), LayerScale(ffn, c.dim)
        return PreNormBlock(attn, ffn, LayerNorm(c.dim, c.norm_eps), LayerNorm(c.dim, c.norm_eps))

    def positions(self, grid_h: int, grid_w: int) -> Tensor:
        """Position table (1, 1 + h·w, dim) for an h × w patch grid, resized bicubically from the learned grid."""
        g = self.config.pos_grid
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        if (grid_h, grid_w) == (g, g):
            return self.pos_embed
        table = patch_pos.reshape(1, g, g, -1).permute(0, 3, 1, 2)  # (1, dim, g, g)
        table = F.interpolate(table.float(), size=(grid_h, grid_w), mode="bicubic", align_corners=False)
        table = table.to(patch_pos.dtype).permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)  # (1, h·w, dim)
        return torch.cat((cls_pos, table), dim=1)

    def forward(self, pixel_values: Tensor) -> Tensor:
        b, _, h, w = pixel_values.shape
        p = self.config.patch_size
        if h % p or w % p:
            raise ConfigError(f"image {h}x{w} is not a multiple of the patch size {p}; resize or crop it first")
        patches = self.patch_embed(pixel_values.to(self.patch_embed.weight.dtype))  # (B, dim, H/p, W/p)
        x = patches.flatten(2).transpose(1, 2)  # (B, N, dim)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)  # (B, 1 + N, dim)
        x = x + self.positions(h // p, w // p)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
