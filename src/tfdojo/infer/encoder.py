"""Sentence embeddings from an encoder model: the sentence-transformers recipe (Reimers & Gurevych, 2019).

    text -> [CLS] tokens [SEP] (truncated) -> encoder -> mean over real tokens -> L2-normalise

all-MiniLM-L6-v2 was trained for exactly this pooling, so cosine similarity of two embeddings is their dot product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.errors import ConfigError, TokenizerError


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Average of the hidden states (B, T, D) over the positions where attention_mask (B, T) is 1 -> (B, D)."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class Encoder:
    """An encoder model with its tokenizer: ``embed`` texts into unit vectors, compare them with ``similarity``."""

    def __init__(self, config: Any, model: nn.Module, tokenizer: Any, *, max_length: int | None = None) -> None:
        self.config, self.model, self.tokenizer = config, model, tokenizer
        self.max_length = max_length or config.max_positions
        if self.max_length > config.max_positions:
            raise ConfigError(
                f"max_length {self.max_length} exceeds the model's {config.max_positions} positions; lower it"
            )

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Padded ids and attention mask (B, T): [CLS] text [SEP], the text cut so the whole fits max_length."""
        if self.tokenizer is None:
            raise TokenizerError("this encoder was loaded without a tokenizer.json; load a folder that has one")
        backend = self.tokenizer.backend
        budget = self.max_length - backend.num_special_tokens_to_add(False)
        encodings = backend.encode_batch(list(texts), add_special_tokens=False)
        rows = []
        for enc in encodings:
            enc.truncate(budget)
            rows.append(torch.tensor(backend.post_process(enc).ids))
        pad_id = self.tokenizer.pad_token_id or 0
        ids = nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=pad_id)  # (B, T)
        lengths = torch.tensor([len(r) for r in rows])
        mask = (torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).long()  # (B, T)
        return ids, mask

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> Tensor:
        """Unit-length sentence embeddings (N, dim) in fp32, one row per text, in the order given."""
        if isinstance(texts, str):
            raise TypeError("embed takes a list of texts; wrap a single text as [text]")
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        device = next(self.model.parameters()).device
        out = torch.empty(len(texts), self.config.dim)
        by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch
        for start in range(0, len(texts), batch_size):
            index = by_length[start : start + batch_size]
            ids, mask = self.tokenize([texts[i] for i in index])
            hidden = self.model(ids.to(device), attention_mask=mask.to(device))  # (B, T, dim)
            out[index] = F.normalize(mean_pool(hidden, mask.to(device)).float(), dim=-1).cpu()
        return out

    def similarity(self, a: Sequence[str] | Tensor, b: Sequence[str] | Tensor) -> Tensor:
        """Cosine similarity matrix (N, M) between two lists of texts, or two sets of embeddings (N, D), (M, D)."""
        ea = a if isinstance(a, Tensor) else self.embed(a)
        eb = b if isinstance(b, Tensor) else self.embed(b)
        return F.normalize(ea.float(), dim=-1) @ F.normalize(eb.float(), dim=-1).T  # (N, M)
