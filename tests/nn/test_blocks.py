"""Pre-LN, post-LN and sandwich blocks against the compositions they claim, written out in the test."""

import pytest
import torch

from tfdojo.errors import ConfigError
from tfdojo.nn.blocks import PostNormBlock, PreNormBlock, SandwichNormBlock, make_block
from tfdojo.nn.ffn import SwiGLU
from tfdojo.nn.norms import RMSNorm
from tfdojo.nn.self_attention import Attention

DIM = 16


def parts(n_norms: int) -> tuple[Attention, SwiGLU, list[RMSNorm]]:
    """A real attention and FFN plus norms with distinct random weights (so swapping two norms would show)."""
    torch.manual_seed(0)
    norms = [RMSNorm(DIM) for _ in range(n_norms)]
    for norm in norms:
        torch.nn.init.normal_(norm.weight)
    return Attention(DIM, n_heads=4, n_kv_heads=2, backend="eager"), SwiGLU(DIM, 32), norms


@pytest.fixture
def x() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, 5, DIM)


def test_pre_norm_block(x: torch.Tensor) -> None:
    attn, ffn, (n1, n2) = parts(2)
    h = x + attn(n1(x), causal=True)
    expected = h + ffn(n2(h))
    torch.testing.assert_close(PreNormBlock(attn, ffn, n1, n2)(x, causal=True), expected)


def test_post_norm_block(x: torch.Tensor) -> None:
    attn, ffn, (n1, n2) = parts(2)
    h = n1(x + attn(x, causal=True))
    expected = n2(h + ffn(h))
    torch.testing.assert_close(PostNormBlock(attn, ffn, n1, n2)(x, causal=True), expected)


def test_sandwich_block(x: torch.Tensor) -> None:
    attn, ffn, (n1, n2, p1, p2) = parts(4)
    h = x + p1(attn(n1(x), causal=True))
    expected = h + p2(ffn(n2(h)))
    torch.testing.assert_close(SandwichNormBlock(attn, ffn, n1, n2, p1, p2)(x, causal=True), expected)
    pre_only = PreNormBlock(attn, ffn, n1, n2)(x, causal=True)
    assert not torch.allclose(expected, pre_only)  # the post norms change the result


def test_make_block_builds_fresh_norms_per_slot() -> None:
    attn, ffn, _ = parts(0)
    block = make_block("sandwich", attn, ffn, lambda: RMSNorm(DIM))
    assert isinstance(block, SandwichNormBlock)
    norms = [block.norm1, block.norm2, block.post_norm1, block.post_norm2]
    assert len({id(n.weight) for n in norms}) == 4
    assert isinstance(make_block("post", attn, ffn, lambda: RMSNorm(DIM)), PostNormBlock)
    assert isinstance(make_block("pre", attn, ffn, lambda: RMSNorm(DIM)), PreNormBlock)
    with pytest.raises(ConfigError, match="unknown block layout"):
        make_block("peri", attn, ffn, lambda: RMSNorm(DIM))  # type: ignore[arg-type]
