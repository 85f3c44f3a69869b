"""int4 / int8 weight codes and the CPU kernels that use them, against fp64 matrix products of the dequantized codes."""

from __future__ import annotations

import copy

import gguf
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tfdojo.errors import ConfigError
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.fast_llama import FastLlama
from tfdojo.infer.int_linear import Int4Linear, Int8Linear
from tfdojo.infer.quant import Int4Codes, Int8Codes, quantize_int4, quantize_int8
from tfdojo.infer.quant_llama import QuantLlama
from tfdojo.models.llama import Llama, LlamaConfig
from tfdojo.weights.gguf_int4 import int4_codes
from tfdojo.weights.gguf_reader import GGUFTensor

GEN = torch.Generator().manual_seed(0)


def bf16(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16)


def rounding_criterion(got: torch.Tensor, x: torch.Tensor, weight: torch.Tensor) -> None:
    """The kernel's error against fp64 at most twice that of bf16 ``F.linear`` on the same (bf16) weights."""
    exact = x.double() @ weight.double().t()
    baseline = F.linear(x, bf16(weight)).double()
    assert (got.double() - exact).abs().max() <= 2 * (baseline - exact).abs().max()


def test_int4_product_matches_fp64_dequantized_matmul():
    out, cols, group = 96, 128, 32
    codes = Int4Codes(
        torch.randint(0, 16, (out, cols), generator=GEN, dtype=torch.uint8),
        torch.rand(out, cols // group, generator=GEN) * 0.05 + 0.01,
        torch.randn(out, cols // group, generator=GEN) * 0.1,
        group,
    )
    x = bf16(torch.randn(5, 3, cols, generator=GEN))
    # the kernel sees its scales and zeros in bf16: that is the matrix it is asked to multiply by
    rounded = Int4Codes(codes.codes, bf16(codes.scale), bf16(codes.zero), group)
    got = Int4Linear(codes)(x)
    assert got.shape == (5, 3, out) and got.dtype == torch.bfloat16
    rounding_criterion(got.reshape(-1, out), x.reshape(-1, cols), rounded.dequantize())


def test_int8_product_matches_fp64_dequantized_matmul():
    out, cols = 40, 96
    codes = Int8Codes(
        torch.randint(-127, 128, (out, cols), generator=GEN, dtype=torch.int8), torch.rand(out, generator=GEN) * 0.01
    )
    x = bf16(torch.randn(7, cols, generator=GEN))
    got = Int8Linear(codes)(x)
    rounding_criterion(got, x, Int8Codes(codes.codes, bf16(codes.scale)).dequantize())


def test_round_to_nearest_codes_are_within_half_a_step():
    w = torch.randn(64, 96, generator=GEN, dtype=torch.float64).float()
    c4 = quantize_int4(w, group=32)
    step4 = c4.scale.repeat_interleave(32, dim=1)  # (out, in): each value's group scale
    assert ((c4.dequantize() - w.double()).abs() <= step4.double() / 2 * (1 + 1e-5)).all()
    assert c4.codes.min() == 0 and c4.codes.max() == 15  # each group's extremes land on the end codes
    c8 = quantize_int8(w)
    assert ((c8.dequantize() - w.double()).abs() <= c8.scale.double()[:, None] / 2 * (1 + 1e-5)).all()
    assert c8.codes.abs().max() == 127


def test_kernel_limits_raise_named_errors():
    with pytest.raises(ConfigError, match="divisible by 8"):  # torch's int8 kernel sums wrongly or crashes there
        Int8Linear(quantize_int8(torch.randn(16, 36)))
    with pytest.raises(ConfigError, match="divisible by 16"):
        Int4Linear(quantize_int4(torch.randn(24, 64)))
    with pytest.raises(ConfigError, match="must divide"):
        quantize_int4(torch.randn(16, 48), group=32)


@pytest.mark.parametrize("kind", [gguf.GGMLQuantizationType.Q4_1, gguf.GGMLQuantizationType.Q4_0])
def test_gguf_q4_blocks_are_the_int4_codes_exactly(kind):
    """Random blocks (every code, random fp16 scales and minima); gguf's own dequantizer is the reference."""
    rows, cols = 16, 128
    n_blocks, header = rows * cols // 32, 4 if kind == gguf.GGMLQuantizationType.Q4_1 else 2
    rng = np.random.default_rng(0)
    halves = (rng.standard_normal((n_blocks, header // 2)) * 0.05).astype(np.float16).view(np.uint8)
    nibbles = rng.integers(0, 256, (n_blocks, 16), dtype=np.uint8)
    data = np.concatenate([halves, nibbles], axis=1).reshape(rows, -1)  # (rows, bytes per row)
    codes = int4_codes(GGUFTensor("t", kind, (cols, rows), data))
    reference = torch.from_numpy(gguf.quants.dequantize(data, kind)).double()
    assert codes is not None and codes.group == 32 and codes.codes.max() == 15
    assert torch.equal(codes.dequantize(), reference)


def tiny_bf16_llama() -> Llama:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=256, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=96, max_seq_len=64, tie_embeddings=False
    )
    model = Llama(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.to(torch.bfloat16).requires_grad_(False)


def dequantized_copy(model: Llama, quant: str) -> Llama:
    """The fp64 model whose weights are what QuantLlama's codes stand for (an independent build of the codes)."""
    ref = copy.deepcopy(model).double()
    names = ["attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "ffn.gate", "ffn.up", "ffn.down"]
    with torch.no_grad():
        for block in ref.layers:
            for name in names:
                lin = block.get_submodule(name)
                codes = quantize_int8(lin.weight) if quant == "int8" else quantize_int4(lin.weight, 32)
                lin.weight.copy_(codes.dequantize())
        ref.lm_head.weight.copy_(quantize_int8(ref.lm_head.weight).dequantize())
    return ref


@pytest.mark.parametrize("quant", ["int4", "int8"])
def test_int_path_computes_the_dequantized_model(quant):
    """Prefill and one-token steps through the int kernels against the fp64 model of the dequantized codes."""
    model = tiny_bf16_llama()
    ids = torch.randint(0, 256, (1, 24), generator=GEN)
    exact = dequantized_copy(model, quant)(ids)  # (1, 24, V) fp64
    plain = copy.deepcopy(model)
    with torch.inference_mode():
        fast_bf16 = FastLlama(plain)  # the same path with bf16 weights: its error sets the bar
        quantized = QuantLlama(model, quant, max_int_rows=10**6)
        outputs = []
        for decoder in (quantized, fast_bf16):
            cache = StaticKVCache.for_model(decoder, batch=1, max_len=24)
            steps = [decoder(ids[:, :16], cache=cache)] + [
                decoder(ids[:, t : t + 1], cache=cache) for t in range(16, 24)
            ]
            outputs.append(torch.cat(steps, dim=1).double())
    bf16_error = (outputs[1] - plain.double()(ids)).abs().max()
    assert (outputs[0] - exact).abs().max() <= 2 * bf16_error


def test_many_rows_take_the_float_products():
    """Above ``max_int_rows`` (a prompt) the float matrices are used: the logits are FastLlama's exactly.

    (Where the CPU lacks bf16 arithmetic the products run in fp32 and round once, as bf16 ``F.linear`` does there.)
    """
    model = tiny_bf16_llama()
    ids = torch.randint(0, 256, (1, 12), generator=GEN)
    with torch.inference_mode():
        reference = FastLlama(copy.deepcopy(model))(ids)
        quantized = QuantLlama(model, "int4", max_int_rows=4)
        assert torch.equal(quantized(ids), reference)
        assert not torch.equal(quantized(ids[:, :4]), reference[:, :4])  # four rows: the int4 kernel
