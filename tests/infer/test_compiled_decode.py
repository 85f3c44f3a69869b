"""The compiled decode step's wrapper: which steps it takes, and the eager fallback when compiling fails.

Compiling itself is not exercised here (minutes on a loaded 2-core machine); ``bench/decode.py`` checks the
compiled step's logits against the eager decoder's before it times it.
"""

from __future__ import annotations

import pytest
import torch
from test_quant import tiny_bf16_llama

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


def test_unknown_quant_is_a_named_error_before_loading():
    with pytest.raises(ConfigError, match="int4, int8"):
        tfdojo.load("smollm2-135m-instruct", quant="int3")
    with pytest.raises(ConfigError, match="language models"):
        tfdojo.load("all-minilm-l6-v2", quant="int8")
    with pytest.raises(ConfigError, match="quant='int4'"):
        tfdojo.load("smollm2-135m-instruct", compile=True)
