"""Dropout against its definition, measured: each element zeroed with probability p, survivors scaled by 1/(1-p)."""

from __future__ import annotations

import math

import pytest
import torch

from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.dropout import Dropout, make_dropout
from tfdojo.nn.self_attention import Attention

P = 0.1


def within_five_sigma(rate: float, p: float, n: int) -> bool:
    """A binomial rate over n draws lies within five standard deviations of p."""
    return abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_dropout_zeroes_at_rate_p_and_scales_the_rest_by_one_over_one_minus_p() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 32, 32)
    y = Dropout(P).train()(x)
    zeroed = y == 0
    assert within_five_sigma(zeroed.double().mean().item(), P, x.numel())
    torch.testing.assert_close(y[~zeroed], x[~zeroed] / (1 - P), atol=0, rtol=1e-6)


def test_dropout_is_off_in_eval_and_under_inference_mode_and_absent_at_zero() -> None:
    x = torch.randn(4, 8)
    drop = Dropout(0.5)
    assert drop.eval()(x) is x
    with torch.inference_mode():
        assert drop.train()(x) is x
    assert isinstance(make_dropout(0.0), torch.nn.Identity)


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
def test_attention_dropout_drops_probabilities_at_rate_p_and_keeps_their_expectation(backend: str) -> None:
    """With V the identity (head width = keys), each output row is that query's dropped probability row itself."""
    torch.manual_seed(1)
    copies, heads, t = 512, 2, 16
    q, k = (torch.randn(1, heads, t, t).expand(copies, -1, -1, -1) for _ in range(2))  # one problem, many draws
    v = torch.eye(t).expand(copies, heads, t, t)
    probs = scaled_dot_product(q, k, v, causal=True, backend="eager")  # no dropout: the probabilities
    dropped = scaled_dot_product(q, k, v, causal=True, backend=backend, dropout_p=P)
    visible = probs > 0  # the causal triangle
    zeroed = (dropped == 0) & visible
    assert within_five_sigma((zeroed.sum() / visible.sum()).item(), P, int(visible.sum()))
    kept = visible & ~zeroed
    torch.testing.assert_close(dropped[kept], probs[kept] / (1 - P), atol=1e-6, rtol=1e-5)
    row_sums = dropped.sum(-1)  # each query's weights still sum to 1 in expectation
    assert abs(row_sums.mean().item() - 1) < 5 * row_sums.std().item() / math.sqrt(row_sums.numel())
    assert row_sums.std() > 0.01  # while single draws do not


@pytest.mark.parametrize("backend", ["eager", "sdpa"])
def test_attention_module_drops_in_training_only(backend: str) -> None:
    """Train-mode outputs scatter around the eval output; their mean over 512 draws is > 10× closer than one (√512)."""
    torch.manual_seed(2)
    attn = Attention(16, n_heads=4, backend=backend, dropout=P)
    x = torch.randn(1, 12, 16).expand(512, -1, -1)
    expected = attn.eval()(x, causal=True)
    with torch.inference_mode():
        torch.testing.assert_close(attn.train()(x, causal=True), expected, atol=0, rtol=0)
    draws = attn.train()(x, causal=True)
    one = (draws[0] - expected[0]).norm()
    assert one > 0 and (draws.mean(0) - expected[0]).norm() < one / 10
