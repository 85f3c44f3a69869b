import torch

from tfdojo.nn.norms import LayerNorm


def reference(x, weight, bias, eps=1e-5):
    norm = LayerNorm(x.shape[-1], eps=eps, bias=bias is not None).to(x.dtype)
    with torch.no_grad():
        norm.weight.copy_(weight)
        if bias is not None:
            norm.bias.copy_(bias)
    return norm


def sample(shape, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    d = shape[-1]
    return (
        torch.randn(shape, generator=g, dtype=dtype) * 3 + 1,
        torch.randn(d, generator=g, dtype=dtype),
        torch.randn(d, generator=g, dtype=dtype),
    )


def test_matches_reference(sub) -> None:
    x, w, b = sample((2, 5, 16), seed=0)
    torch.testing.assert_close(sub.layer_norm(x, w, b), reference(x, w, b)(x))


def test_no_bias(sub) -> None:
    x, w, _ = sample((3, 8), seed=1)
    torch.testing.assert_close(sub.layer_norm(x, w, None), reference(x, w, None)(x))


def test_biased_variance_by_hand(sub) -> None:
    x = torch.tensor([[1.0, 3.0]], dtype=torch.float64)  # mean 2, biased variance 1
    got = sub.layer_norm(x, torch.ones(2, dtype=torch.float64), None, eps=0.0)
    torch.testing.assert_close(got, torch.tensor([[-1.0, 1.0]], dtype=torch.float64))


def test_eps_inside_the_square_root(sub) -> None:
    x = torch.tensor([[0.0, 0.02]], dtype=torch.float64)  # variance 1e-4
    got = sub.layer_norm(x, torch.ones(2, dtype=torch.float64), None, eps=1e-2)
    torch.testing.assert_close(got, (x - 0.01) / (1e-4 + 1e-2) ** 0.5)


def test_float32_keeps_dtype(sub) -> None:
    x, w, b = sample((4, 32), seed=2, dtype=torch.float32)
    got = sub.layer_norm(x, w, b)
    assert got.dtype == torch.float32, f"expected float32, got {got.dtype}"
    torch.testing.assert_close(got, reference(x, w, b)(x))


def test_gradients_match_reference(sub) -> None:
    x, w, b = sample((3, 6), seed=3)
    up = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    ours = [t.clone().requires_grad_() for t in (x, w, b)]
    (sub.layer_norm(*ours) * up).sum().backward()
    ref_x = x.clone().requires_grad_()
    norm = reference(x, w, b)
    (norm(ref_x) * up).sum().backward()
    for name, got, want in zip(["x", "weight", "bias"], ours, [ref_x, norm.weight, norm.bias], strict=True):
        torch.testing.assert_close(got.grad, want.grad, msg=f"gradient of {name}")
