"""Mutant: keeps the document blocks but forgets causality inside them."""

import torch
from torch import Tensor


def document_ids(starts: Tensor) -> Tensor:
    """Correct ids."""
    starts = starts.clone()
    starts[:, 0] = True
    return starts.long().cumsum(-1) - 1


def document_causal_mask(doc_ids: Tensor) -> Tensor:
    """Each token sees its whole document, future included."""
    return doc_ids.unsqueeze(-1) == doc_ids.unsqueeze(-2)


def document_positions(doc_ids: Tensor) -> Tensor:
    """Correct positions."""
    index = torch.arange(doc_ids.shape[-1]).expand_as(doc_ids)
    is_start = torch.ones_like(doc_ids, dtype=torch.bool)
    is_start[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    return index - torch.where(is_start, index, 0).cummax(-1).values
