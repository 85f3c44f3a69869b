"""Feed-forward variants against their formulas written out in fp64."""

import math

import pytest
import torch

from tfdojo.errors import ConfigError
from tfdojo.nn.ffn import MLP, GeGLU, SwiGLU, make_ffn

DIM, HIDDEN = 8, 24


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """Hendrycks & Gimpel (2016), tanh approximation."""
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def gelu_erf(x: torch.Tensor) -> torch.Tensor:
    """GELU(x) = x Φ(x) with the exact normal CDF."""
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    out = x @ layer.weight.double().T
    return out if layer.bias is None else out + layer.bias.double()


@pytest.fixture
def x() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(3, 5, DIM, dtype=torch.float64)


def test_gelu_mlp_matches_formula(x: torch.Tensor) -> None:
    ffn = MLP(DIM, HIDDEN, "gelu", bias=True).double()
    expected = linear(ffn.proj, gelu_erf(linear(ffn.fc, x)))
    torch.testing.assert_close(ffn(x), expected)


def test_relu_squared_matches_formula(x: torch.Tensor) -> None:
    ffn = make_ffn("mlp", DIM, HIDDEN, activation="relu2").double()
    h = linear(ffn.fc, x)
    expected = linear(ffn.proj, torch.where(h > 0, h * h, torch.zeros_like(h)))
    torch.testing.assert_close(ffn(x), expected)
    assert (h < 0).any()  # the negative side was exercised


def test_swiglu_matches_formula(x: torch.Tensor) -> None:
    ffn = SwiGLU(DIM, HIDDEN).double()
    g = linear(ffn.gate, x)
    expected = linear(ffn.down, g / (1 + torch.exp(-g)) * linear(ffn.up, x))
    torch.testing.assert_close(ffn(x), expected)


@pytest.mark.parametrize(("name", "reference"), [("gelu_tanh", gelu_tanh), ("gelu", gelu_erf)])
def test_geglu_matches_formula(x: torch.Tensor, name: str, reference) -> None:
    ffn = make_ffn("geglu", DIM, HIDDEN, activation=name, bias=True).double()
    assert isinstance(ffn, GeGLU)
    expected = linear(ffn.down, reference(linear(ffn.gate, x)) * linear(ffn.up, x))
    torch.testing.assert_close(ffn(x), expected)


def test_geglu_default_is_the_tanh_gelu(x: torch.Tensor) -> None:
    ffn = GeGLU(DIM, HIDDEN).double()
    expected = linear(ffn.down, gelu_tanh(linear(ffn.gate, x)) * linear(ffn.up, x))
    torch.testing.assert_close(ffn(x), expected)


def test_unknown_names_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown activation 'swish'"):
        MLP(DIM, HIDDEN, "swish")
    with pytest.raises(ConfigError, match="unknown feed-forward"):
        make_ffn("moe", DIM, HIDDEN)  # type: ignore[arg-type]
