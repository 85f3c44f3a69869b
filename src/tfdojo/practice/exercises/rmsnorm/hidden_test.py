import torch

from tfdojo.nn.norms import RMSNorm


def reference(x, weight, eps=1e-6):
    norm = RMSNorm(x.shape[-1], eps=eps).to(weight.dtype)
    with torch.no_grad():
        norm.weight.copy_(weight)
    return norm(x)


def test_matches_reference(sub) -> None:
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 5, 16, generator=g), torch.randn(16, generator=g)
    torch.testing.assert_close(sub.rms_norm(x, w), reference(x, w))


def test_explicit_formula_on_a_small_vector(sub) -> None:
    x = torch.tensor([[3.0, 4.0]])  # mean of squares 12.5
    got = sub.rms_norm(x, torch.ones(2), eps=0.0)
    torch.testing.assert_close(got, x / 12.5**0.5)


def test_eps_inside_the_square_root(sub) -> None:
    x = torch.full((1, 4), 1e-3)
    got = sub.rms_norm(x, torch.ones(4), eps=1e-2)
    torch.testing.assert_close(got, x / (1e-6 + 1e-2) ** 0.5)


def test_single_row_and_batch_independence(sub) -> None:
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(3, 7, generator=g), torch.randn(7, generator=g)
    whole = sub.rms_norm(x, w)
    torch.testing.assert_close(whole[1:2], sub.rms_norm(x[1:2], w), msg="each row is normalised on its own")
    torch.testing.assert_close(whole, reference(x, w))


def test_bfloat16_keeps_dtype(sub) -> None:
    g = torch.Generator().manual_seed(2)
    x, w = torch.randn(4, 32, generator=g).bfloat16(), torch.randn(32, generator=g).bfloat16()
    got = sub.rms_norm(x, w)
    assert got.dtype == torch.bfloat16, f"expected bfloat16, got {got.dtype}"
    torch.testing.assert_close(got, reference(x, w))


def test_gradients_match_reference(sub) -> None:
    g = torch.Generator().manual_seed(3)
    x, w, up = torch.randn(3, 8, generator=g), torch.randn(8, generator=g), torch.randn(3, 8, generator=g)
    ours_x, ours_w = x.clone().requires_grad_(), w.clone().requires_grad_()
    (sub.rms_norm(ours_x, ours_w) * up).sum().backward()
    ref_x = x.clone().requires_grad_()
    norm = RMSNorm(8)
    with torch.no_grad():
        norm.weight.copy_(w)
    (norm(ref_x) * up).sum().backward()
    torch.testing.assert_close(ours_x.grad, ref_x.grad, msg="gradient of x")
    torch.testing.assert_close(ours_w.grad, norm.weight.grad, msg="gradient of weight")
