import torch

from tfdojo.nn.attention import scaled_dot_product


def reference(x, w_q, w_k, w_v, w_o, n_heads, causal):
    """tfdojo's eager attention on the split heads, in float64."""
    b, t, d = x.shape

    def split(y):
        return y.view(b, t, n_heads, d // n_heads).transpose(1, 2)

    heads = scaled_dot_product(split(x @ w_q), split(x @ w_k), split(x @ w_v), causal=causal)
    return heads.transpose(1, 2).reshape(b, t, d) @ w_o


def inputs(b, t, d, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, d, generator=g, dtype=dtype)
    weights = [torch.randn(d, d, generator=g, dtype=dtype) / d**0.5 for _ in range(4)]
    return x, weights


def test_matches_reference_bidirectional(sub) -> None:
    x, w = inputs(2, 5, 16, seed=0)
    torch.testing.assert_close(sub.multi_head_attention(x, *w, 4), reference(x, *w, 4, False))


def test_matches_reference_causal(sub) -> None:
    x, w = inputs(2, 7, 24, seed=1)
    torch.testing.assert_close(sub.multi_head_attention(x, *w, 3, causal=True), reference(x, *w, 3, True))


def test_causal_output_ignores_future_tokens(sub) -> None:
    x, w = inputs(1, 6, 8, seed=2)
    changed = x.clone()
    changed[:, 4:] += 10.0
    a = sub.multi_head_attention(x, *w, 2, causal=True)
    b = sub.multi_head_attention(changed, *w, 2, causal=True)
    torch.testing.assert_close(a[:, :4], b[:, :4], msg="changing tokens 4.. must not change outputs 0..3")


def test_single_token_and_single_head(sub) -> None:
    x, w = inputs(3, 1, 8, seed=3)
    torch.testing.assert_close(sub.multi_head_attention(x, *w, 1, causal=True), reference(x, *w, 1, True))
    torch.testing.assert_close(sub.multi_head_attention(x, *w, 8), reference(x, *w, 8, False))


def test_float32_keeps_dtype(sub) -> None:
    x, w = inputs(2, 4, 16, seed=4, dtype=torch.float32)
    got = sub.multi_head_attention(x, *w, 4, causal=True)
    assert got.dtype == torch.float32, f"expected float32 output, got {got.dtype}"
    torch.testing.assert_close(got, reference(x, *w, 4, True), rtol=1e-4, atol=1e-5)


def test_gradients_match_reference(sub) -> None:
    x, w = inputs(2, 5, 12, seed=5)
    ours = [t.clone().requires_grad_() for t in (x, *w)]
    theirs = [t.clone().requires_grad_() for t in (x, *w)]
    upstream = torch.randn(2, 5, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    (sub.multi_head_attention(*ours, 3, causal=True) * upstream).sum().backward()
    (reference(*theirs, 3, True) * upstream).sum().backward()
    for name, a, b in zip(["x", "w_q", "w_k", "w_v", "w_o"], ours, theirs, strict=True):
        assert a.grad is not None, f"no gradient reached {name}"
        torch.testing.assert_close(a.grad, b.grad, msg=f"gradient of {name} differs")
