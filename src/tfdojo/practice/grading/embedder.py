"""The sentence embedder the free-text grader compares clauses with: MiniLM (all-MiniLM-L6-v2), loaded once, lazily."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Protocol

from torch import Tensor

GRADER_MODEL = "all-minilm-l6-v2"


class Embedder(Protocol):
    """Anything that maps texts to L2-normalised vectors (N, D), like ``tfdojo.infer.encoder.Encoder``."""

    def embed(self, texts: Sequence[str]) -> Tensor:
        """Unit-length embeddings, one row per text, in the order given."""
        ...


@cache
def default_embedder() -> Embedder:
    """The bundled MiniLM encoder, loaded on first use and shared by every grade in the process."""
    import tfdojo

    return tfdojo.load(GRADER_MODEL)
