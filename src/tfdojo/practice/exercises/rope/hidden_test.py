import torch

from tfdojo.nn.rope import RotaryEmbedding
from tfdojo.nn.rope import apply_rope as tfdojo_apply_rope

# tfdojo keeps its inverse frequencies in float32, so angles at large positions differ by ~p·1e-7 from float64.
TOL = {"rtol": 1e-5, "atol": 2e-5}


def reference(x, positions, base=10000.0):
    cos, sin = RotaryEmbedding(x.shape[-1], base)(positions.unsqueeze(0), x.dtype)  # (1, T, D)
    return tfdojo_apply_rope(x, cos, sin)


def test_matches_reference(sub) -> None:
    x = torch.randn(2, 3, 5, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    positions = torch.arange(5)
    torch.testing.assert_close(sub.apply_rope(x, positions), reference(x, positions), **TOL)


def test_offset_positions_and_other_base(sub) -> None:
    x = torch.randn(1, 2, 3, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    positions = torch.tensor([100, 101, 102])
    torch.testing.assert_close(sub.apply_rope(x, positions, 500000.0), reference(x, positions, 500000.0), **TOL)


def test_single_decode_position(sub) -> None:
    x = torch.randn(2, 4, 1, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    positions = torch.tensor([37])
    torch.testing.assert_close(sub.apply_rope(x, positions), reference(x, positions), **TOL)


def test_dot_product_depends_only_on_distance(sub) -> None:
    g = torch.Generator().manual_seed(3)
    q = torch.randn(1, 1, 1, 8, dtype=torch.float64, generator=g)
    k = torch.randn(1, 1, 1, 8, dtype=torch.float64, generator=g)

    def score(m, n):
        return (sub.apply_rope(q, torch.tensor([m])) * sub.apply_rope(k, torch.tensor([n]))).sum()

    torch.testing.assert_close(score(7, 3), score(14, 10), msg="q_m·k_n must depend on m - n only")
    torch.testing.assert_close(score(0, 0), (q * k).sum(), msg="position 0 is the identity rotation")


def test_preserves_norm_and_dtype(sub) -> None:
    x = torch.randn(2, 2, 6, 10, generator=torch.Generator().manual_seed(4))
    got = sub.apply_rope(x, torch.arange(6))
    assert got.dtype == torch.float32, f"expected float32, got {got.dtype}"
    torch.testing.assert_close(got.norm(dim=-1), x.norm(dim=-1), msg="a rotation keeps each vector's length")
    torch.testing.assert_close(got, reference(x, torch.arange(6)), rtol=1e-5, atol=1e-5)


def test_odd_head_dim_raises(sub) -> None:
    try:
        sub.apply_rope(torch.zeros(1, 1, 2, 7), torch.arange(2))
    except ValueError:
        return
    raise AssertionError("an odd head dimension must raise ValueError")
