"""Positions and masks shared by the decoder-only families, for a plain forward or a step against a cache."""

from __future__ import annotations

import torch
from torch import Tensor

from tfdojo.nn.masks import key_padding_mask


def decoder_masks(
    input_ids: Tensor, past: int, positions: Tensor | None, attention_mask: Tensor | None
) -> tuple[Tensor, Tensor | None]:
    """Positions (B|1, T) and an optional keep-mask (B, 1, 1, past+T) for the new tokens.

    ``attention_mask`` (B, past+T), 1 for real tokens and 0 for padding, covers the cached positions too.
    With left padding, a real token's position counts only the real tokens before it, so a padded prompt
    sees the same positions as the unpadded one.
    """
    t = input_ids.shape[1]
    if attention_mask is None:
        if positions is None:
            positions = torch.arange(past, past + t, device=input_ids.device).unsqueeze(0)  # (1, T)
        return positions, None
    if positions is None:
        positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -t:]  # (B, T)
    return positions, key_padding_mask(attention_mask)
