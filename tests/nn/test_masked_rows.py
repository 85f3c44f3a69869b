"""A query row that sees no key (pad positions before a left-padded prompt) gives 0 from every backend."""

from __future__ import annotations

import pytest
import torch
from attention_reference import reference_attention
from torch import Tensor

from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.backends.linformer import LinformerProjection
from tfdojo.nn.masks import as_additive
from tfdojo.nn.positions import alibi_slopes

# Row 1 is left-padded by 3: under the causal mask its queries 0-2 see only pad keys.
REAL = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]], dtype=torch.bool)
KEEP = REAL[:, None, None, :]  # (B, 1, 1, S)
PADS = 3


def _qkv() -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(0)
    shapes = ((2, 4, 8, 16), (2, 2, 8, 16), (2, 2, 8, 16))  # GQA: 4 query heads over 2 key/value heads
    return tuple(torch.randn(*s, generator=gen, dtype=torch.float64) for s in shapes)  # type: ignore[return-value]


EXACT = {
    "eager": {},
    "sdpa": {},
    "tiled": {"block_q": 3, "block_k": 2},
    "block_sparse": {"block": 2, "local": 4},  # every block kept: dense attention through the sparse path
}


CASES = [  # (backend, additive mask, ALiBi); block_sparse takes only a boolean key-padding mask and no ALiBi
    (backend, additive, alibi)
    for backend in EXACT
    for additive in (False, True)
    for alibi in (False, True)
    if backend != "block_sparse" or not (additive or alibi)
]


@pytest.mark.parametrize(("backend", "additive", "alibi"), CASES)
def test_exact_backends_zero_the_rows_and_keep_the_rest(backend: str, additive: bool, alibi: bool) -> None:
    q, k, v = _qkv()
    mask = as_additive(KEEP, torch.float64) if additive else KEEP  # HF's finfo.min convention, or a keep-mask
    slopes = alibi_slopes(4) if alibi else None
    options = EXACT[backend] | ({"alibi_slopes": slopes} if alibi else {})
    out = scaled_dot_product(q, k, v, causal=True, mask=mask, backend=backend, **options)
    assert out[1, :, :PADS].abs().max() == 0
    expected = reference_attention(q, k, v, causal=True, slopes=slopes, keep=KEEP)
    torch.testing.assert_close(out[1, :, PADS:], expected[1, :, PADS:], rtol=0, atol=1e-12)
    torch.testing.assert_close(out[0], expected[0], rtol=0, atol=1e-12)


def test_the_eager_oracle_used_to_average_the_hidden_keys() -> None:
    """The regression: with finfo.min scores the softmax of a row without keys was uniform, a non-zero mean."""
    q, k, v = _qkv()
    out = scaled_dot_product(q, k, v, causal=True, mask=KEEP, backend="eager")
    assert v[1, :, :1].abs().max() > 0.1  # the row's only (hidden) key carries a value it used to return
    assert out[1, :, 0].abs().max() == 0


def test_tiled_gradients_are_zero_through_the_empty_rows() -> None:
    q, k, v = (x.requires_grad_() for x in _qkv())
    out = scaled_dot_product(q, k, v, causal=True, mask=KEEP, backend="tiled", block_q=3, block_k=2)
    out[1, :, :PADS].sum().backward()
    assert q.grad.abs().max() == 0 and k.grad.abs().max() == 0 and v.grad.abs().max() == 0


def test_linear_attention_rows_without_keys_are_zero() -> None:
    q, k, v = _qkv()
    out = scaled_dot_product(q, k, v, causal=True, mask=KEEP, backend="linear", chunk=4)
    assert out[1, :, :PADS].abs().max() == 0
    assert out[1, :, PADS:].abs().min() > 0


def test_linformer_row_of_padding_only_is_zero() -> None:
    """Linformer mixes positions, so a query sees no key only when the whole sequence is padding."""
    q, k, v = _qkv()
    keep = torch.tensor([[1] * 8, [0] * 8], dtype=torch.bool)[:, None, None, :]
    out = scaled_dot_product(q, k, v, mask=keep, backend="linformer", projection=LinformerProjection(8, 4).double())
    assert out[1].abs().max() == 0 and out[0].abs().min() > 0
