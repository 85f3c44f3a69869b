"""Hidden tests for the LayerNorm backward: autograd through tfdojo.nn.norms.LayerNorm (fp64) is the reference."""

import torch

from tfdojo.nn.norms import LayerNorm


def _inputs(shape: tuple[int, ...], seed: int, dtype=torch.float64, spread: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    d = shape[-1]
    x = torch.randn(*shape, generator=g, dtype=dtype) * spread + 0.3
    weight = torch.randn(d, generator=g, dtype=dtype)
    bias = torch.randn(d, generator=g, dtype=dtype)
    return x, weight, bias, torch.randn(*shape, generator=g, dtype=dtype)


def _reference(x, weight, bias, grad_out, eps: float):
    norm = LayerNorm(x.shape[-1], eps=eps).to(torch.float64)
    with torch.no_grad():
        norm.weight.copy_(weight)
        norm.bias.copy_(bias)
    xr = x.detach().double().clone().requires_grad_()
    norm(xr).backward(grad_out.double())
    return xr.grad, norm.weight.grad, norm.bias.grad


def _check(sub, x, weight, bias, grad_out, eps: float = 1e-5, **tol: float) -> None:
    got = sub.layer_norm_backward(x, weight, grad_out, eps)
    want = _reference(x, weight, bias, grad_out, eps)
    for name, g, w, like in zip(("dx", "dweight", "dbias"), got, want, (x, weight, weight), strict=True):
        assert g.shape == like.shape and g.dtype == like.dtype, f"{name}: {tuple(g.shape)} {g.dtype}"
        torch.testing.assert_close(g.double(), w, msg=lambda m, n=name: f"{n}: {m}", **tol)


def test_two_dimensional(sub) -> None:
    _check(sub, *_inputs((6, 16), 0))


def test_three_dimensional_sums_weight_gradients_over_all_rows(sub) -> None:
    _check(sub, *_inputs((2, 5, 8), 1))


def test_epsilon_inside_the_square_root(sub) -> None:
    x, weight, bias, grad_out = _inputs((4, 8), 2, spread=1e-3)  # σ² ~ 1e-6, comparable to ε
    _check(sub, x, weight, bias, grad_out, eps=1e-5)
    _check(sub, x, weight, bias, grad_out, eps=1e-2)


def test_constant_row(sub) -> None:
    x, weight, bias, grad_out = _inputs((3, 6), 3)
    x[1] = 2.5  # zero variance: x̂ = 0, only ε keeps r finite
    _check(sub, x, weight, bias, grad_out)


def test_width_one(sub) -> None:
    x, weight, bias, grad_out = _inputs((5, 1), 4)
    dx, dweight, dbias = sub.layer_norm_backward(x, weight, grad_out)
    torch.testing.assert_close(dx, torch.zeros_like(x))  # x̂ is always 0, y is the bias alone
    torch.testing.assert_close(dweight, torch.zeros_like(weight))
    torch.testing.assert_close(dbias, grad_out.sum(0))


def test_float32(sub) -> None:
    x, weight, bias, grad_out = (t.float() for t in _inputs((4, 32), 5))
    _check(sub, x, weight, bias, grad_out, rtol=1e-4, atol=1e-5)
