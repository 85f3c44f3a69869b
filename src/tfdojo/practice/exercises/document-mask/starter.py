"""Block-diagonal causal masks and per-document positions for packed sequences."""

from torch import Tensor


def document_ids(starts: Tensor) -> Tensor:
    """Boolean (B, T), True at each document's first token -> LongTensor (B, T) of document numbers 0, 1, …."""
    raise NotImplementedError


def document_causal_mask(doc_ids: Tensor) -> Tensor:
    """(B, T) non-decreasing document ids -> boolean (B, T, T): same document and key ≤ query."""
    raise NotImplementedError


def document_positions(doc_ids: Tensor) -> Tensor:
    """(B, T) non-decreasing document ids -> LongTensor (B, T): offset of each token within its document."""
    raise NotImplementedError
