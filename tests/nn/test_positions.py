"""Sinusoidal, learned and ALiBi positions against the published formulas and HF's BLOOM ALiBi tensor."""

import math

import pytest
import torch
from transformers.models.bloom.modeling_bloom import build_alibi_tensor

from tfdojo.errors import ConfigError
from tfdojo.nn.positions import (
    LearnedPositions,
    SinusoidalPositions,
    alibi_slopes,
    sinusoidal_table,
)


def test_sinusoidal_table_matches_the_2017_formula_in_fp64() -> None:
    n, d = 50, 16
    expected = torch.empty(n, d, dtype=torch.float64)
    for p in range(n):
        for i in range(d // 2):
            expected[p, 2 * i] = math.sin(p / 10000 ** (2 * i / d))
            expected[p, 2 * i + 1] = math.cos(p / 10000 ** (2 * i / d))
    torch.testing.assert_close(sinusoidal_table(n, d).double(), expected, rtol=0, atol=1e-7)


def test_sinusoidal_module_looks_up_offset_positions() -> None:
    module = SinusoidalPositions(dim=8, max_len=32)
    positions = torch.tensor([[5, 6, 7], [0, 1, 2]])  # (B, T): a cached row and a fresh row
    out = module(positions)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor(math.sin(5.0)))
    torch.testing.assert_close(out[1, 2, 1], torch.tensor(math.cos(2.0)))


def test_learned_positions_are_trainable_rows() -> None:
    torch.manual_seed(0)
    module = LearnedPositions(max_len=16, dim=4)
    positions = torch.tensor([[3, 9]])
    out = module(positions)
    torch.testing.assert_close(out[0], module.weight[[3, 9]])
    out.sum().backward()
    assert module.weight.grad[[3, 9]].eq(1).all() and module.weight.grad.sum() == 8  # only the rows used


def published_slopes(n: int) -> list[float]:
    """Press et al. (2022): 2^(-8i/n) for a power of two; else the closest power of two plus every other of 2m."""

    def power_of_two(k: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(k) - 3)))
        return [start * start**i for i in range(k)]

    if math.log2(n).is_integer():
        return power_of_two(n)
    m = 2 ** math.floor(math.log2(n))
    return power_of_two(m) + power_of_two(2 * m)[0::2][: n - m]


@pytest.mark.parametrize("n_heads", range(1, 17))
def test_alibi_slopes_match_published_rule(n_heads: int) -> None:
    expected = torch.tensor(published_slopes(n_heads), dtype=torch.float32)
    torch.testing.assert_close(alibi_slopes(n_heads), expected)


def test_alibi_slopes_known_values() -> None:
    """The paper's example for 8 heads (1/2 … 1/256) and the 12-head case spelled out."""
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0**-k for k in range(1, 9)]))
    twelve = [2.0**-k for k in range(1, 9)] + [2.0**-k for k in (0.5, 1.5, 2.5, 3.5)]
    torch.testing.assert_close(alibi_slopes(12), torch.tensor(twelve))


@pytest.mark.parametrize("n_heads", [4, 9, 12])
def test_alibi_slopes_match_hf_bloom(n_heads: int) -> None:
    """BLOOM's ALiBi tensor is slope_h · j for key position j: read the slopes back from it."""
    keys = 6
    bloom = build_alibi_tensor(torch.ones(1, keys), n_heads, torch.float32).view(n_heads, keys)  # (H, S)
    torch.testing.assert_close(bloom[:, 1:] / torch.arange(1, keys), alibi_slopes(n_heads)[:, None].expand(-1, 5))


def test_bad_sizes_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="even dim"):
        sinusoidal_table(4, 7)
    with pytest.raises(ConfigError, match="positive number of heads"):
        alibi_slopes(0)
