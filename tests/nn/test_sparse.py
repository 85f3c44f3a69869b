"""Block-sparse attention (local, strided, global blocks) against dense eager attention with the equivalent mask."""

from __future__ import annotations

import math

import pytest
import torch
from attention_reference import reference_attention
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.masks import block_layout, expand_layout


def _pattern(t: int, s: int, block: int, local: int, stride: int | None, global_blocks: int) -> Tensor:
    """(T, S) bool straight from the pattern's definition, on absolute blocks of query and key positions."""
    rows = []
    for i in range(t):
        qb = (s - t + i) // block
        row = []
        for j in range(s):
            kb = j // block
            strided = stride is not None and (qb - kb) % stride == 0
            row.append(abs(qb - kb) < local or strided or kb < global_blocks or qb < global_blocks)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.bool)


def test_layout_of_the_documented_example() -> None:
    layout = block_layout(6, 6, local=1, stride=3, global_blocks=1)
    causal_part = [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0],
        [1, 0, 0, 1, 0, 0],
        [1, 1, 0, 0, 1, 0],
        [1, 0, 1, 0, 0, 1],
    ]
    assert layout.tril().int().tolist() == causal_part
    assert layout[0].all() and layout[:, 0].all()  # the global block reads and is read by everything


@pytest.mark.parametrize("t, s", [(37, 37), (5, 37), (12, 40)])
def test_expanded_layout_matches_the_definition(t: int, s: int) -> None:
    block = 4
    n_k = math.ceil(s / block)
    first = (s - t) // block
    layout = block_layout(n_k - first, n_k, local=2, stride=3, global_blocks=1)
    torch.testing.assert_close(expand_layout(layout, block, t, s), _pattern(t, s, block, 2, 3, 1))


# (B, Hq, Hkv, T, S, causal, block, local, stride, global_blocks, padded)
CASES = {
    "strided_global_causal": (1, 4, 2, 45, 45, True, 4, 1, 3, 1, False),
    "local_bidirectional": (2, 2, 2, 40, 40, False, 8, 2, None, 0, False),
    "strided_bidirectional_padded": (2, 4, 4, 33, 33, False, 4, 1, 2, 0, True),
    "decode_alignment_gqa": (2, 6, 2, 7, 50, True, 8, 2, 3, 1, True),
    "all_global_queries": (1, 2, 1, 6, 20, False, 8, 1, None, 3, False),
}


@pytest.mark.parametrize("name", CASES)
def test_block_sparse_equals_dense_attention_with_the_mask(name: str) -> None:
    b, hq, hkv, t, s, causal, block, local, stride, global_blocks, padded = CASES[name]
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(b, hq, t, 8, generator=gen, dtype=torch.float64)
    k, v = (torch.randn(b, hkv, s, 8, generator=gen, dtype=torch.float64) for _ in range(2))
    padding = None
    keep = _pattern(t, s, block, local, stride, global_blocks)
    if padded:  # the last row's final 3 keys are padding
        real = torch.ones(b, s, dtype=torch.bool)
        real[-1, -3:] = False
        padding = real[:, None, None, :]  # (B, 1, 1, S)
        keep = keep & padding
    options = {"block": block, "local": local, "stride": stride, "global_blocks": global_blocks}
    out = scaled_dot_product(q, k, v, causal=causal, mask=padding, backend="block_sparse", **options)
    torch.testing.assert_close(out, reference_attention(q, k, v, causal=causal, keep=keep), rtol=0, atol=1e-12)
    eager = scaled_dot_product(q, k, v, causal=causal, mask=keep, backend="eager")
    torch.testing.assert_close(out, eager, rtol=0, atol=1e-12)


def test_block_sparse_reads_fewer_keys_than_dense() -> None:
    """With a local band only, each query block's scores cover 3 key blocks, not all of them."""
    q = torch.randn(1, 1, 256, 8, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda x: saved.append(x.numel()) or x, lambda x: x):
        scaled_dot_product(q, q, q, backend="block_sparse", block=16, local=2)
    assert max(saved) <= 256 * 3 * 16


def test_masks_other_than_key_padding_are_refused() -> None:
    q = torch.randn(1, 2, 8, 4)
    with pytest.raises(ConfigError, match="key-padding"):
        scaled_dot_product(q, q, q, mask=torch.ones(8, 8, dtype=torch.bool), backend="block_sparse", block=4)
