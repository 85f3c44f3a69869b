"""Quantized KV cache: codes round-trip within half a quantization step, the logits stay within a stated error
of the fp32 cache, and on SmolLM2 int8 changes perplexity by at most 0.5 % (int4 within its stated bound)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_generate import ByteTokenizer, tiny_llama
from threads import one_thread  # noqa: F401  (autouse: one thread for tiny models)

from tfdojo.errors import ConfigError
from tfdojo.infer.cache import CacheGeometry, StaticKVCache
from tfdojo.infer.generate import generate
from tfdojo.infer.quant_cache import QuantizedKVCache, dequantize, quantize


@pytest.mark.parametrize("bits", [8, 4])
def test_round_trip_error_is_at_most_half_a_step(bits):
    x = torch.randn(3, 2, 5, 64) * torch.rand(3, 2, 5, 1) * 10  # vectors of very different ranges
    codes, scale, low = quantize(x, bits)
    assert codes.dtype == torch.uint8 and codes.shape[-1] == 64 * bits // 8
    err = (dequantize(codes, scale, low, bits) - x).abs()
    step = (x.amax(-1, keepdim=True) - x.amin(-1, keepdim=True)) / (2**bits - 1)
    assert bool((err <= step / 2 + 1e-5 * step).all())
    assert float(err.max()) > 0  # it really quantizes


# Stated bounds: the largest logit change, relative to the spread (std) of the fp32 logits, over a prefill of 48
# tokens on the tiny model. Measured: int8 0.48 %, int4 7.5 %.
LOGIT_BOUND = {8: 0.01, 4: 0.15}


@pytest.mark.parametrize("bits", [8, 4])
def test_logits_stay_within_the_stated_error(bits):
    model = tiny_llama()
    ids = torch.randint(0, 256, (2, 48), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        exact = model(ids, cache=StaticKVCache.for_model(model, 2, 64))
        quant = model(ids, cache=QuantizedKVCache(CacheGeometry.of(model), 2, 64, bits))
    relative = float((quant - exact).abs().max() / exact.std())
    print(f"int{bits}: max logit error / logit std = {relative:.4f}")
    assert 0 < relative <= LOGIT_BOUND[bits]


def test_generate_runs_on_the_int8_cache():
    model = tiny_llama()
    out = generate(model, ByteTokenizer(), list(b"quantized"), max_new_tokens=16, cache=QuantizedKVCache.factory(8))
    plain = generate(model, ByteTokenizer(), list(b"quantized"), max_new_tokens=16)
    agree = sum(a == b for a, b in zip(out.token_ids, plain.token_ids, strict=False))
    assert agree >= 12  # a random tiny model has near-ties; most greedy tokens must survive int8 keys and values


def test_bad_bit_widths_are_refused():
    with pytest.raises(ConfigError, match="8 or 4 bits"):
        QuantizedKVCache(CacheGeometry.of(tiny_llama()), 1, 8, bits=3)


@pytest.mark.parametrize("bits", [8, 4])
def test_a_position_costs_its_codes_plus_two_scalars_per_head(bits):
    g = CacheGeometry.of(tiny_llama())  # fp32, head_dim 16
    per_vector = g.head_dim * bits // 8 + 2 * 4  # codes, then an fp32 scale and offset
    assert QuantizedKVCache(g, 1, 8, bits).bytes_per_position() == 2 * g.n_layers * g.n_kv_heads * per_vector


GPL3 = Path("/usr/share/common-licenses/GPL-3")  # English prose present on every Debian system (base-files)


def nll(model, ids, cache):
    """Per-token negative log-likelihood of ids (1, T) from one forward through ``cache``."""
    with torch.inference_mode():
        logp = torch.log_softmax(model(ids, cache=cache)[0, :-1].float(), dim=-1)
    return -logp.gather(1, ids[0, 1:, None]).squeeze(1)


# Perplexity change on 512 tokens of the GPL-3 text with SmolLM2-135M (measured: int8 -0.20 %, int4 +20.6 %;
# per-token int4 is coarse for keys, which have outlier channels: KIVI quantizes keys per channel for this reason).
PPL_BOUND = {8: 0.005, 4: 0.25}


@pytest.mark.slow
def test_smollm2_perplexity_delta(smollm2):
    ids = torch.tensor([smollm2.tokenizer.encode(GPL3.read_text())[:512]])
    model, g = smollm2.decoder, CacheGeometry.of(smollm2.model)
    base = nll(model, ids, StaticKVCache.for_model(smollm2.model, 1, 512)).mean().exp()
    for bits, bound in PPL_BOUND.items():
        ppl = nll(model, ids, QuantizedKVCache(g, 1, 512, bits)).mean().exp()
        delta = float(ppl / base - 1)
        print(f"int{bits}: perplexity {float(base):.3f} -> {float(ppl):.3f} ({delta:+.2%})")
        assert abs(delta) <= bound
