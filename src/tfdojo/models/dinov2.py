"""DINOv2 (Oquab et al., 2023, "DINOv2: Learning Robust Visual Features without Supervision"): a ViT with layer scale.

DINOv2-S/14 is trained at 518 px, so it learns a 37 × 37 position grid (518 / 14); at 224 px the grid is 16 × 16
and the positions are resized bicubically (``ViT.positions``). Inputs are ImageNet-normalised RGB.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tfdojo.models.vit import ViTConfig

# ImageNet channel statistics, the normalisation DINOv2 was trained with (torchvision's published values).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def dinov2_small_config() -> ViTConfig:
    """DINOv2-S/14: 12 layers, d=384, 6 heads, MLP 1536, LayerNorm eps 1e-6, layer scale, 37 × 37 positions."""
    return ViTConfig(
        image_size=224,
        patch_size=14,
        dim=384,
        n_layers=12,
        n_heads=6,
        ffn_hidden=1536,
        norm_eps=1e-6,
        layer_scale=True,
        pos_grid=37,
    )


def normalize_images(images: Tensor) -> Tensor:
    """RGB images in [0, 1], (B, 3, H, W) -> the ImageNet-normalised input DINOv2 expects."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)  # (1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)  # (1, 3, 1, 1)
    return (images - mean) / std
