"""Block-diagonal causal masks and per-document positions for packed sequences."""

import torch
from torch import Tensor


def document_ids(starts: Tensor) -> Tensor:
    """Boolean (B, T), True at each document's first token -> LongTensor (B, T) of document numbers 0, 1, …."""
    starts = starts.clone()
    starts[:, 0] = True  # the row's first token always opens a document
    return starts.long().cumsum(-1) - 1


def document_causal_mask(doc_ids: Tensor) -> Tensor:
    """(B, T) non-decreasing document ids -> boolean (B, T, T): same document and key ≤ query."""
    t = doc_ids.shape[-1]
    same_document = doc_ids.unsqueeze(-1) == doc_ids.unsqueeze(-2)  # (B, T, T)
    causal = torch.ones(t, t, dtype=torch.bool, device=doc_ids.device).tril()  # (T, T)
    return same_document & causal


def document_positions(doc_ids: Tensor) -> Tensor:
    """(B, T) non-decreasing document ids -> LongTensor (B, T): offset of each token within its document."""
    t = doc_ids.shape[-1]
    index = torch.arange(t, device=doc_ids.device).expand_as(doc_ids)  # (B, T)
    is_start = torch.ones_like(doc_ids, dtype=torch.bool)
    is_start[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    start_index = torch.where(is_start, index, 0).cummax(-1).values  # index of the latest document start
    return index - start_index
