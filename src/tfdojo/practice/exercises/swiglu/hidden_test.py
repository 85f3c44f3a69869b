import torch

from tfdojo.nn.ffn import SwiGLU


def reference(w_gate, w_up, w_down):
    """tfdojo's SwiGLU module with the given matrices (nn.Linear stores (out, in), hence the transposes)."""
    d, f = w_gate.shape
    ffn = SwiGLU(d, f).to(w_gate.dtype)
    with torch.no_grad():
        ffn.gate.weight.copy_(w_gate.T)
        ffn.up.weight.copy_(w_up.T)
        ffn.down.weight.copy_(w_down.T)
    return ffn


def sample(d, f, lead, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, d, generator=g, dtype=dtype)
    return (
        x,
        torch.randn(d, f, generator=g, dtype=dtype),
        torch.randn(d, f, generator=g, dtype=dtype),
        torch.randn(f, d, generator=g, dtype=dtype),
    )


def test_matches_reference(sub) -> None:
    x, wg, wu, wd = sample(8, 20, (2, 3), seed=0)
    torch.testing.assert_close(sub.swiglu(x, wg, wu, wd), reference(wg, wu, wd)(x))


def test_silu_by_hand(sub) -> None:
    x = torch.tensor([[1.0]], dtype=torch.float64)
    one = torch.ones(1, 1, dtype=torch.float64)
    got = sub.swiglu(x, 2 * one, 3 * one, one)  # silu(2) * 3
    want = 2.0 / (1.0 + torch.exp(torch.tensor(-2.0, dtype=torch.float64))) * 3.0
    torch.testing.assert_close(got, want.view(1, 1))


def test_gate_and_up_are_not_interchangeable(sub) -> None:
    x, wg, wu, wd = sample(4, 6, (5,), seed=1)
    torch.testing.assert_close(sub.swiglu(x, wg, wu, wd), reference(wg, wu, wd)(x))
    torch.testing.assert_close(sub.swiglu(x, wu, wg, wd), reference(wu, wg, wd)(x))


def test_float32_keeps_dtype(sub) -> None:
    x, wg, wu, wd = sample(16, 40, (3,), seed=2, dtype=torch.float32)
    got = sub.swiglu(x, wg, wu, wd)
    assert got.dtype == torch.float32, f"expected float32, got {got.dtype}"
    torch.testing.assert_close(got, reference(wg, wu, wd)(x), rtol=1e-4, atol=1e-4)


def test_gradients_match_reference(sub) -> None:
    x, wg, wu, wd = sample(6, 10, (4,), seed=3)
    up = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    ours = [t.clone().requires_grad_() for t in (x, wg, wu, wd)]
    (sub.swiglu(*ours) * up).sum().backward()
    ffn = reference(wg, wu, wd)
    ref_x = x.clone().requires_grad_()
    (ffn(ref_x) * up).sum().backward()
    wants = [ref_x.grad, ffn.gate.weight.grad.T, ffn.up.weight.grad.T, ffn.down.weight.grad.T]
    for name, got, want in zip(["x", "w_gate", "w_up", "w_down"], ours, wants, strict=True):
        torch.testing.assert_close(got.grad, want, msg=f"gradient of {name}")
