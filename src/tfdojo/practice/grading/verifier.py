"""The verifier: a cross-encoder that reads a key point and a sentence together and says entails / contradicts / other.

A bi-encoder compares two separately pooled vectors, so "the KV cache stores the queries" lands next to "the cache
stores the keys and values". A cross-encoder attends across the pair (Nogueira & Cho, 2019, "Passage Re-ranking
with BERT"; the NLI set-up of Bowman et al., 2015):

    [CLS] key point [SEP] answer sentence [SEP] -> MiniLM layers 1..5 (shared with the embedder, frozen)
                                                -> layer 6 (fine-tuned copy) -> mean pool -> linear -> 3 logits

Only the fine-tuned last layer and the head would be shipped (``verifier.safetensors``, fp16, 3.6 MB); the rest is
the bundled all-MiniLM-L6-v2. No weights are shipped yet: the runs so far learnt the class prior, not the relation
(docs/grading.md), so ``default_verifier()`` returns None and the grader runs without this stage.
``python -m tfdojo.practice.grading.train_verifier`` rebuilds the file from the bank and the calibration questions
(never the held-out ones), with a fixed seed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.infer.encoder import Encoder, mean_pool
from tfdojo.nn.masks import key_padding_mask

WEIGHTS = Path(__file__).with_name("verifier.safetensors")
LABELS = ("entails", "contradicts", "other")
ENTAILS, CONTRADICTS, OTHER = range(3)
MAX_TOKENS = 64


class Verifier(nn.Module):
    """MiniLM's frozen lower layers, a trainable copy of its last layer, and a 3-way head over the mean-pooled pair."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.top = copy.deepcopy(encoder.model.layers[-1])
        self.head = nn.Linear(encoder.config.dim, len(LABELS))

    def tokenize(self, points: Sequence[str], sentences: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
        """Padded ids, token types and mask (B, T) for [CLS] point [SEP] sentence [SEP], cut to MAX_TOKENS."""
        backend = self.encoder.tokenizer.backend
        rows = []
        for point, sentence in zip(points, sentences, strict=True):
            enc = backend.encode(point, sentence)
            rows.append((enc.ids[:MAX_TOKENS], enc.type_ids[:MAX_TOKENS]))
        width = max(len(ids) for ids, _ in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)  # (B, T)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, (row_ids, row_types) in enumerate(rows):
            ids[i, : len(row_ids)] = torch.tensor(row_ids)
            types[i, : len(row_types)] = torch.tensor(row_types)
            mask[i, : len(row_ids)] = 1
        return ids, types, mask

    def lower(self, ids: Tensor, types: Tensor, mask: Tensor) -> Tensor:
        """The frozen part: embeddings and all but the last MiniLM layer (B, T, D)."""
        bert = self.encoder.model
        with torch.no_grad():
            positions = torch.arange(ids.shape[1])  # (T,)
            x = bert.embed_norm(bert.embed(ids) + bert.pos_embed(positions) + bert.type_embed(types))  # (B, T, D)
            padding = key_padding_mask(mask)  # (B, 1, 1, T)
            for layer in bert.layers[:-1]:
                x = layer(x, mask=padding, causal=False)
        return x

    def upper(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """The trained part: the last layer over the frozen states (B, T, D), mean pool, head -> logits (B, 3)."""
        x = self.top(hidden, mask=key_padding_mask(mask), causal=False)  # (B, T, D)
        return self.head(mean_pool(x, mask))

    def forward(self, ids: Tensor, types: Tensor, mask: Tensor) -> Tensor:
        """Logits (B, 3) over entails / contradicts / other."""
        return self.upper(self.lower(ids, types, mask), mask)

    @torch.inference_mode()
    def probabilities(self, points: Sequence[str], sentences: Sequence[str]) -> Tensor:
        """(N, 3) probabilities of entails / contradicts / other for each (point, sentence) pair."""
        if not points:
            return torch.empty(0, len(LABELS))
        return F.softmax(self(*self.tokenize(points, sentences)).float(), dim=-1)

    def trained_state(self) -> dict[str, Tensor]:
        """The parameters that are shipped: the fine-tuned top layer and the head."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}


@cache
def default_verifier() -> Verifier | None:
    """The shipped verifier on the bundled MiniLM, or None when the weights file is absent."""
    if not WEIGHTS.exists():
        return None
    from safetensors.torch import load_file

    from tfdojo.practice.grading.embedder import default_embedder

    encoder = default_embedder()
    if not isinstance(encoder, Encoder):
        return None
    verifier = Verifier(encoder)
    state = {k: v.float() for k, v in load_file(str(WEIGHTS)).items()}
    verifier.load_state_dict(state, strict=False)
    return verifier.eval()
