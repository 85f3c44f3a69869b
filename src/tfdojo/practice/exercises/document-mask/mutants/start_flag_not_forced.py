"""Mutant: trusts starts[:, 0], so a row whose first flag is unset numbers its documents from -1."""

import torch
from torch import Tensor


def document_ids(starts: Tensor) -> Tensor:
    """Plain cumsum minus one."""
    return starts.long().cumsum(-1) - 1


def document_causal_mask(doc_ids: Tensor) -> Tensor:
    """Correct mask."""
    t = doc_ids.shape[-1]
    return (doc_ids.unsqueeze(-1) == doc_ids.unsqueeze(-2)) & torch.ones(t, t, dtype=torch.bool).tril()


def document_positions(doc_ids: Tensor) -> Tensor:
    """Correct positions."""
    index = torch.arange(doc_ids.shape[-1]).expand_as(doc_ids)
    is_start = torch.ones_like(doc_ids, dtype=torch.bool)
    is_start[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    return index - torch.where(is_start, index, 0).cummax(-1).values
