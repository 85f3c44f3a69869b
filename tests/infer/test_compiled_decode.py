"""The compiled decode step: its logits against an fp64 oracle, which steps it takes, the eager fallback."""

from __future__ import annotations

import pytest
import torch
from test_quant import dequantized_copy, tiny_bf16_llama

import tfdojo
from tfdojo.errors import ConfigError
from tfdojo.infer import compiled_decode
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.compiled_decode import CompiledDecoder
from tfdojo.infer.quant_llama import QuantLlama


def test_failed_compile_prints_one_notice_and_decodes_eagerly(monkeypatch, capsys):
    def broken_compile(fn, **options):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(compiled_decode.torch, "compile", broken_compile)
    ids = torch.randint(0, 256, (1, 14), generator=torch.Generator().manual_seed(0))
    eager, wrapped = QuantLlama(tiny_bf16_llama(), "int8"), CompiledDecoder(QuantLlama(tiny_bf16_llama(), "int8"))
    outputs = []
    with torch.inference_mode():
        for decoder in (eager, wrapped):
            cache = StaticKVCache.for_model(decoder, batch=1, max_len=14)
            steps = [decoder(ids[:, :10], cache=cache)] + [
                decoder(ids[:, t : t + 1], cache=cache) for t in range(10, 14)
            ]
            outputs.append(torch.cat(steps, dim=1))
    assert torch.equal(outputs[0], outputs[1])
    notices = capsys.readouterr().err.strip().splitlines()
    assert notices[-1] == "tfdojo: compiled decode unavailable (RuntimeError); decoding eagerly"
    assert len(notices) == 2  # "compiling …", then the failure, once
    assert wrapped.compiled is False


def test_only_batch1_steps_at_the_cache_position_take_the_compiled_path():
    wrapped = CompiledDecoder(QuantLlama(tiny_bf16_llama(), "int8"))
    cache = StaticKVCache.for_model(wrapped, batch=1, max_len=8)
    cache.advance(3)
    one = torch.zeros(1, 1, dtype=torch.long)
    assert wrapped.applies(one, None, None, cache)
    assert wrapped.applies(one, torch.tensor([[3]]), None, cache)
    assert not wrapped.applies(one, torch.tensor([[2]]), None, cache)  # a padded row's own numbering
    assert not wrapped.applies(torch.zeros(1, 2, dtype=torch.long), None, None, cache)  # a prompt
    assert not wrapped.applies(one, None, torch.ones(1, 4), cache)  # a padding mask
    assert not wrapped.applies(one, None, None, None)  # no cache
    cache.truncate(1)
    assert not wrapped.applies(one, None, None, cache)  # one cached position: dynamic sizes start at 2


def test_unknown_quant_is_a_named_error_before_loading():
    with pytest.raises(ConfigError, match="int4, int8"):
        tfdojo.load("smollm2-135m-instruct", quant="int3")
    with pytest.raises(ConfigError, match="language models"):
        tfdojo.load("all-minilm-l6-v2", quant="int8")
    with pytest.raises(ConfigError, match="quant='int4'"):
        tfdojo.load("smollm2-135m-instruct", compile=True)


def _steps(decoder, ids: list[int], prompt: int, max_len: int, follow: bool) -> tuple[list[int], torch.Tensor]:
    """Prefill ``ids[:prompt]``, then one-token steps: along ``ids`` or (``follow``) along the decoder's own argmax."""
    cache, tokens = StaticKVCache.for_model(decoder, batch=1, max_len=max_len), list(ids)
    with torch.inference_mode():
        logits = [decoder(torch.tensor([tokens[:prompt]]), cache=cache, last_only=True)]
        for t in range(prompt, len(ids)):
            if follow:
                tokens[t] = int(logits[-1][0, -1].argmax())
            logits.append(decoder(torch.tensor([[tokens[t]]]), cache=cache))
    return tokens, torch.cat(logits, dim=1)[0].double()  # (len - prompt + 1, V)


def test_compiled_steps_match_the_fp64_model_of_the_codes_and_compile_once():
    """Teacher-forced steps: the compiled graph's error against the fp64 model whose weights are the int4 codes is
    at most twice the eager decoder's; its free-running greedy tokens equal eager's, or split only where eager's own
    top two logits are within its own rounding error. A second prompt length and cache size reuse the graph.
    """
    model = tiny_bf16_llama()
    oracle = dequantized_copy(model, "int4")
    compiled = CompiledDecoder(QuantLlama(model, "int4"))
    eager = compiled.decoder
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    g = torch.Generator().manual_seed(1)
    for prompt, new in ((5, 24), (20, 12)):  # int products for the first prompt, the float prompt path for the second
        ids = torch.randint(0, 256, (prompt + new,), generator=g).tolist()
        path, eager_logits = _steps(eager, ids, prompt, prompt + new, follow=True)
        _, compiled_logits = _steps(compiled, path, prompt, prompt + new, follow=False)
        with torch.inference_mode():
            exact = oracle(torch.tensor([path]))[0, prompt - 1 :]  # (new + 1, V)
        eager_error = (eager_logits - exact).abs().max()
        assert (compiled_logits - exact).abs().max() <= 2 * eager_error
        own, _ = _steps(compiled, ids, prompt, prompt + new, follow=True)
        split = next((t for t in range(prompt, len(ids)) if own[t] != path[t]), None)
        if split is not None:
            top2 = eager_logits[split - prompt].topk(2).values
            assert top2[0] - top2[1] <= 2 * eager_error, f"compiled greedy split at a clear choice (step {split})"
    assert compiled.compiled not in (None, False)  # the graph was built and used, not the eager fallback
    assert compiled.stacks is not None  # and read the stacked weights
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs == 1
