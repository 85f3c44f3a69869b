"""LayerNorm and RMSNorm against explicit fp64 formulas, torch.nn.functional and HF's LlamaRMSNorm."""

import pytest
import torch
import torch.nn.functional as F
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from tfdojo.errors import ConfigError
from tfdojo.nn.norms import LayerNorm, RMSNorm, make_norm


def randomised(module: torch.nn.Module) -> torch.nn.Module:
    """Give every parameter random values so that weight and bias actually matter."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module


@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_matches_fp64_formula_and_functional(bias: bool) -> None:
    torch.manual_seed(0)
    norm = randomised(LayerNorm(16, eps=1e-5, bias=bias))
    x = torch.randn(3, 5, 16) * 4 + 2
    xd = x.double()
    mean = xd.mean(-1, keepdim=True)
    var = ((xd - mean) ** 2).mean(-1, keepdim=True)  # biased variance, as the paper and torch use
    expected = (xd - mean) / torch.sqrt(var + 1e-5) * norm.weight.double()
    if bias:
        expected = expected + norm.bias.double()
    torch.testing.assert_close(norm(x).double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norm(x), F.layer_norm(x, (16,), norm.weight, norm.bias, 1e-5), rtol=0, atol=0)


def test_rmsnorm_matches_fp64_formula() -> None:
    torch.manual_seed(0)
    norm = randomised(RMSNorm(16, eps=1e-6))
    x = torch.randn(4, 16) * 3 + 1
    xd = x.double()
    expected = xd / torch.sqrt((xd**2).mean(-1, keepdim=True) + 1e-6) * norm.weight.double()
    torch.testing.assert_close(norm(x).double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rmsnorm_matches_hf_llama_including_low_precision(dtype: torch.dtype) -> None:
    """HF normalises in fp32 and casts back before the weight multiply; bf16 outputs must agree bit for bit."""
    torch.manual_seed(0)
    ours, hf = randomised(RMSNorm(32, eps=1e-5)), LlamaRMSNorm(32, eps=1e-5)
    hf.weight.data.copy_(ours.weight.data)
    ours, hf = ours.to(dtype), hf.to(dtype)
    x = (torch.randn(2, 7, 32) * 5).to(dtype)
    torch.testing.assert_close(ours(x), hf(x), rtol=0, atol=0)


def test_make_norm_builds_the_named_kind() -> None:
    assert isinstance(make_norm("rmsnorm", 8, 1e-6), RMSNorm)
    layer = make_norm("layernorm", 8, 1e-5, bias=False)
    assert isinstance(layer, LayerNorm) and layer.bias is None
    with pytest.raises(ConfigError, match="unknown norm"):
        make_norm("batchnorm", 8, 1e-5)  # type: ignore[arg-type]
