"""The attention registry and the dense backends (eager, sdpa) with windows, ALiBi and masks, against fp64."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from attention_reference import allowed, reference_attention
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.nn.attention import available_backends, scaled_dot_product
from tfdojo.nn.masks import merge_masks, window_mask
from tfdojo.nn.positions import alibi_slopes


def _qkv(b: int, hq: int, hkv: int, t: int, s: int, d: int = 16) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(0)
    return (
        torch.randn(b, hq, t, d, generator=gen, dtype=torch.float64),
        torch.randn(b, hkv, s, d, generator=gen, dtype=torch.float64),
        torch.randn(b, hkv, s, d, generator=gen, dtype=torch.float64),
    )


def test_unknown_backend_is_a_config_error_naming_the_choices() -> None:
    q, k, v = _qkv(1, 2, 2, 3, 3)
    with pytest.raises(ConfigError, match="unknown attention backend 'flash3'.*tiled"):
        scaled_dot_product(q, k, v, backend="flash3")


def test_every_backend_is_reachable_by_name_in_a_fresh_interpreter() -> None:
    """The registry imports tfdojo.nn.backends on first lookup: no import order needed, no cycle."""
    code = (
        "from tfdojo.nn.attention import get_backend; import torch\n"
        "q = torch.randn(1, 2, 4, 8)\n"
        "print(get_backend('tiled')(q, q, q).shape[2], get_backend('linear')(q, q, q).shape[2])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["4", "4"]
    assert {"eager", "sdpa", "tiled", "block_sparse", "linear", "linformer"} <= set(available_backends())


@pytest.mark.parametrize("window", [1, 3, 8])
@pytest.mark.parametrize("causal", [True, False])
def test_window_mask_follows_the_rule(window: int, causal: bool) -> None:
    for t, s in [(8, 8), (3, 8)]:
        torch.testing.assert_close(
            window_mask(t, s, window, causal=causal), allowed(t, s, causal=causal, window=window)
        )


def test_a_window_of_zero_is_refused() -> None:
    with pytest.raises(ConfigError, match="positive"):
        merge_masks(True, None, 4, 4, torch.device("cpu"), window=0)


# (B, Hq, Hkv, T, S, causal, window, alibi)
DENSE_CASES = [
    (2, 4, 2, 11, 11, True, 4, False),  # Mistral-style sliding window, GQA
    (1, 4, 4, 11, 11, False, 3, False),  # local (two-sided) window
    (1, 8, 8, 9, 9, True, None, True),  # ALiBi
    (2, 4, 1, 3, 12, True, 5, True),  # decode alignment, MQA, window + ALiBi
    (1, 2, 2, 10, 10, False, None, True),  # bidirectional ALiBi
]


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
@pytest.mark.parametrize("case", DENSE_CASES)
def test_dense_backends_with_window_and_alibi(backend: str, case: tuple) -> None:
    b, hq, hkv, t, s, causal, window, alibi = case
    q, k, v = _qkv(b, hq, hkv, t, s)
    slopes = alibi_slopes(hq) if alibi else None
    out = scaled_dot_product(q, k, v, causal=causal, window=window, alibi_slopes=slopes, backend=backend)
    expected = reference_attention(q, k, v, causal=causal, window=window, slopes=slopes)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
def test_padding_mask_with_alibi(backend: str) -> None:
    q, k, v = _qkv(2, 4, 2, 6, 6)
    real = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.bool)
    keep = real[:, None, None, :]  # (B, 1, 1, S)
    slopes = alibi_slopes(4)
    out = scaled_dot_product(q, k, v, causal=True, mask=keep, alibi_slopes=slopes, backend=backend)
    expected = reference_attention(q, k, v, causal=True, slopes=slopes, keep=keep)
    torch.testing.assert_close(out[1, :, 2:], expected[1, :, 2:], rtol=0, atol=1e-12)  # rows with a real key
    torch.testing.assert_close(out[0], expected[0], rtol=0, atol=1e-12)
