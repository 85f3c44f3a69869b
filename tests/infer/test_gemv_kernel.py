"""Our AVX2 one-row int4 / int8 products (gemv_avx2.c) against fp64 matrix products of the codes they hold."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from test_quant import dequantized_copy, tiny_bf16_llama
from threads import one_thread  # noqa: F401  (autouse: one thread for tiny models)

from tfdojo.infer import gemv_kernel
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.fast_llama import FastLlama
from tfdojo.infer.int_linear import Int4Linear, Int8Linear
from tfdojo.infer.quant import Int4Codes, Int8Codes
from tfdojo.infer.quant_llama import QuantLlama

needs_avx2 = pytest.mark.skipif(not gemv_kernel.cpu_supported(), reason="the kernels need x86-64 AVX2 + FMA")
GEN = torch.Generator().manual_seed(0)
# (out, in): SmolLM2's qkv, gate/up, down; rows not a multiple of 4; 1, 2, 3 and 5 groups (single, pair, odd)
SHAPES = [(960, 576), (3072, 576), (576, 1536), (13, 96), (7, 64), (5, 32), (22, 160)]


def random_int4(out: int, cols: int) -> Int4Codes:
    return Int4Codes(
        torch.randint(0, 16, (out, cols), generator=GEN, dtype=torch.uint8),
        torch.rand(out, cols // 32, generator=GEN) * 0.02 + 0.002,
        torch.randn(out, cols // 32, generator=GEN) * 0.05,
        32,
    )


def kernel_matrix(codes: Int4Codes) -> torch.Tensor:
    """fp64 (out, in): w = s·q + (z − 8s) with s and the low z − 8s rounded to fp16, as the kernel stores them."""
    out, cols = codes.codes.shape
    scale = codes.scale.half().double()
    low = (codes.zero.double() - 8 * codes.scale.double()).half().double()
    q = codes.codes.double().view(out, cols // 32, 32)
    return (q * scale[..., None] + low[..., None]).reshape(out, cols)


def bf16_error(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The largest error of bf16 ``F.linear`` on the same matrix (rounded to bf16) against fp64: the bar."""
    return (F.linear(x, weight.bfloat16()).double() - x.double() @ weight.t()).abs().max()


@needs_avx2
@pytest.mark.parametrize("shape", SHAPES)
def test_int4_gemv_matches_fp64_product_of_its_codes(shape):
    """Error at most twice bf16 F.linear's: x is rounded to int16 per block (step absmax/32767), y to bf16 once."""
    codes = random_int4(*shape)
    x = torch.randn(1, shape[1], generator=GEN).bfloat16()
    weight = kernel_matrix(codes)
    low = codes.zero - 8 * codes.scale
    got = gemv_kernel.q4_gemv(x[0], gemv_kernel.pack_int4(codes.codes), codes.scale.half(), low.half())  # (out,)
    assert got.dtype == torch.bfloat16
    assert (got.double() - x[0].double() @ weight.t()).abs().max() <= 2 * bf16_error(x, weight)
    if shape[0] % 16 == 0:  # torch's packer's limit: Int4Linear takes these, and its one-row path is the kernel
        lin = Int4Linear(codes)
        assert lin.one_row is not None and torch.equal(lin(x)[0], got)


@needs_avx2
@pytest.mark.parametrize("shape", [(49152 // 64, 576), (576, 1536), (13, 96), (5, 32)])
def test_int8_gemv_matches_fp64_product_of_its_codes(shape):
    out, cols = shape
    codes = Int8Codes(
        torch.randint(-127, 128, (out, cols), generator=GEN, dtype=torch.int8), torch.rand(out, generator=GEN) * 0.01
    )
    x = torch.randn(1, 1, cols, generator=GEN).bfloat16()
    lin = Int8Linear(codes)
    got = lin(x)
    assert lin.one_row is not None and got.shape == (1, 1, out)
    weight = codes.dequantize()  # the kernel keeps the fp32 scales: no rounding of the matrix
    assert (got[0].double() - x[0].double() @ weight.t()).abs().max() <= 2 * bf16_error(x[0], weight)


@needs_avx2
def test_bias_and_many_rows_keep_torch_kernels():
    codes, bias = random_int4(32, 64), torch.randn(32, generator=GEN).bfloat16()
    lin = Int4Linear(codes, bias)
    x = torch.randn(3, 64, generator=GEN).bfloat16()
    weight = kernel_matrix(codes)
    one = lin(x[:1])
    assert torch.equal(one[0], gemv_kernel.q4_gemv(x[0], *lin.one_row) + bias)
    many = lin(x)  # three rows: torch's int4 kernel, which rounds scales to bf16
    exact = x.double() @ weight.t() + bias.double()
    assert (many.double() - exact).abs().max() <= 2 * bf16_error(x, weight) + 0.02 * weight.abs().max()
    assert not torch.equal(many[:1], one)


def test_disabled_kernels_fall_back_to_torch_with_one_notice(monkeypatch, capsys):
    """TFDOJO_NO_KERNELS=1: one notice line, torch's kernels; both paths within their bf16-level error of fp64."""
    codes = random_int4(96, 128)
    x = torch.randn(1, 128, generator=GEN).bfloat16()
    with_kernel = Int4Linear(codes)(x)
    monkeypatch.setenv(gemv_kernel.DISABLE_ENV, "1")
    monkeypatch.setattr(gemv_kernel, "_state", {})
    first, second = Int4Linear(codes), Int8Linear(Int8Codes(codes.codes.to(torch.int8), codes.scale[:, 0]))
    assert first.one_row is None and second.one_row is None
    notices = capsys.readouterr().err.strip().splitlines()
    assert len(notices) == 1 and "TFDOJO_NO_KERNELS" in notices[0]
    fallback = first(x)
    # torch's kernel multiplies by bf16 scales and zeros: its own matrix
    torch_matrix = Int4Codes(codes.codes, codes.scale.bfloat16(), codes.zero.bfloat16(), 32).dequantize()
    bar = 2 * max(bf16_error(x, kernel_matrix(codes)), bf16_error(x, torch_matrix))
    assert (fallback.double() - x.double() @ torch_matrix.t()).abs().max() <= bar
    assert (with_kernel.double() - x.double() @ kernel_matrix(codes).t()).abs().max() <= bar
    scales_apart = (x.double() @ (kernel_matrix(codes) - torch_matrix).t()).abs().max()  # fp16 vs bf16 scales
    assert (with_kernel.double() - fallback.double()).abs().max() <= 2 * bar + scales_apart


@needs_avx2
def test_build_is_cached_by_hash_and_a_missing_compiler_falls_back(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(gemv_kernel, "_state", {})
    assert gemv_kernel.library() is not None
    built = list((tmp_path / "tfdojo" / "kernels").iterdir())
    assert len(built) == 1 and built[0].name.startswith("gemv_avx2-") and built[0].suffix == ".so"
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(gemv_kernel, "_state", {})
    assert gemv_kernel.library() is not None and built[0].stat().st_mtime_ns == stamp  # reused, not rebuilt
    monkeypatch.setenv("CC", "no-such-compiler-tfdojo")
    monkeypatch.setattr(gemv_kernel, "_state", {})
    assert gemv_kernel.library() is None
    assert "no C compiler" in capsys.readouterr().err


@needs_avx2
def test_greedy_decode_through_the_kernels_follows_the_fp64_model_of_the_codes():
    """A tiny int4 model, 24 one-token steps along the fp64 oracle's greedy path: the kernel path picks the oracle's
    token wherever the oracle's top two logits are further apart than twice the bf16 FastLlama's error."""
    model = tiny_bf16_llama()
    oracle = dequantized_copy(model, "int4")
    quantized, fast_bf16 = QuantLlama(copy.deepcopy(model), "int4"), FastLlama(copy.deepcopy(model))
    assert quantized.layers[0].gate_up.integer.one_row is not None  # the decode steps run our kernel
    ids = [3, 17, 101, 5, 42]
    with torch.inference_mode():
        for _ in range(24):  # the oracle's greedy continuation
            ids.append(int(oracle(torch.tensor([ids]))[0, -1].argmax()))
        exact = oracle(torch.tensor([ids]))[0, 4:-1]  # (24, V): logits for each new token
        steps = {}
        for name, decoder in (("int4", quantized), ("bf16", fast_bf16)):
            cache = StaticKVCache.for_model(decoder, batch=1, max_len=len(ids))
            decoder(torch.tensor([ids[:4]]), cache=cache)
            steps[name] = torch.cat([decoder(torch.tensor([[t]]), cache=cache) for t in ids[4:-1]], 1)[0].double()
        bf16_error = (steps["bf16"] - copy.deepcopy(model).double()(torch.tensor([ids]))[0, 4:-1]).abs().max()
    bar = 2 * bf16_error
    top2 = exact.topk(2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > bar
    assert clear.sum() >= 12  # most steps are clear choices: the check is not vacuous
    picked = steps["int4"].argmax(-1)
    assert torch.equal(picked[clear], torch.tensor(ids[5:])[clear])


@needs_avx2
@pytest.mark.parametrize(
    ("hq", "hkv", "n", "sharp"), [(9, 3, 13, 1.0), (9, 3, 0, 1.0), (4, 4, 16, 1.0), (6, 2, 7, 30.0)]
)
def test_attend_one_against_fp64(hq, hkv, n, sharp):
    """One query over layer 1 of a (2, 1, Hkv, S, D) bf16 cache plus the new key/value: within twice the error of
    torch's fp32 attention rounded to bf16 (the eager decoder's), against fp64; ``sharp`` makes a peaked softmax."""
    d, s = 64, 20
    q = (torch.randn(1, hq, 1, d, generator=GEN) * sharp).bfloat16()
    k_cache, v_cache = (torch.randn(2, 1, hkv, s, d, generator=GEN).bfloat16() for _ in range(2))
    k_new, v_new = (torch.randn(1, hkv, 1, d, generator=GEN).bfloat16() for _ in range(2))
    got = gemv_kernel.attend_one(q, k_cache, v_cache, k_new, v_new, 1, n)  # (1, Hq, 1, D)
    k = torch.cat([k_cache[1, :, :, :n], k_new], dim=2).repeat_interleave(hq // hkv, dim=1)  # (1, Hq, n+1, D)
    v = torch.cat([v_cache[1, :, :, :n], v_new], dim=2).repeat_interleave(hq // hkv, dim=1)
    exact = torch.softmax(q.double() @ k.double().transpose(-1, -2) / d**0.5, dim=-1) @ v.double()
    eager = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).bfloat16()
    assert got.shape == q.shape and got.dtype == torch.bfloat16
    assert (got.double() - exact).abs().max() <= 2 * (eager.double() - exact).abs().max()
