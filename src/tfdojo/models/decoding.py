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


def document_masks(document_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Positions (B, T) that restart at 0 in each document, and a keep-mask (B, 1, T, T) within documents.

    For packed training rows: several documents share a row, and no token may attend across a document
    boundary. ``document_ids`` (B, T) numbers the document of every token; causality is applied on top by the
    attention itself::

        document_ids  0 0 0 1 1 2        positions  0 1 2 0 1 0
        keep (row i sees col j when both ids match, j ≤ i added by the causal flag)
    """
    same = document_ids.unsqueeze(2) == document_ids.unsqueeze(1)  # (B, T, T)
    t = document_ids.shape[1]
    index = torch.arange(t, device=document_ids.device).expand_as(document_ids)  # (B, T)
    starts = torch.ones_like(document_ids, dtype=torch.bool)
    starts[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]  # first token of each document
    start_index = torch.where(starts, index, torch.zeros_like(index)).cummax(dim=1).values  # (B, T)
    return index - start_index, same.unsqueeze(1)
