"""StaticKVCache: what update returns is what was written, in place; overflow is an error; decoding through it
reproduces the plain forward of Llama and GPT-2."""

from __future__ import annotations

import pytest
import torch

from tfdojo.errors import ContextLengthError
from tfdojo.infer.cache import StaticKVCache
from tfdojo.models.gpt2 import GPT2, GPT2Config
from tfdojo.models.llama import Llama, LlamaConfig


def tiny_llama() -> Llama:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=64, max_seq_len=64)
    return Llama(config).eval()


def tiny_gpt2() -> GPT2:
    torch.manual_seed(0)
    return GPT2(GPT2Config(vocab_size=97, n_positions=64, dim=32, n_layers=2, n_heads=4)).eval()


def test_update_returns_everything_written_so_far():
    cache = StaticKVCache(n_layers=2, batch=2, n_kv_heads=3, max_len=10, head_dim=4)
    written_k = {0: [], 1: []}
    for t in (4, 1, 3):  # a prefill, a decode step, then a chunk
        for layer in (0, 1):
            k, v = torch.randn(2, 3, t, 4), torch.randn(2, 3, t, 4)
            written_k[layer].append(k)
            got_k, got_v = cache.update(layer, k, v)
            assert torch.equal(got_k, torch.cat(written_k[layer], dim=2))
            assert torch.equal(got_v[:, :, -t:], v)
        cache.advance(t)
    assert cache.length == 8


def test_update_writes_in_place_into_one_buffer():
    cache = StaticKVCache(n_layers=1, batch=1, n_kv_heads=1, max_len=6, head_dim=2)
    k, _ = cache.update(0, torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2))
    assert k.data_ptr() == cache.k.data_ptr()  # a view of the preallocated buffer, not a copy
    assert torch.equal(cache.k[0, 0, 0, :2], torch.ones(2, 2))
    assert torch.equal(cache.k[0, 0, 0, 2:], torch.zeros(4, 2))


def test_overflow_raises_context_length_error():
    cache = StaticKVCache(n_layers=1, batch=1, n_kv_heads=1, max_len=5, head_dim=2)
    cache.update(0, torch.zeros(1, 1, 4, 2), torch.zeros(1, 1, 4, 2))
    cache.advance(4)
    with pytest.raises(ContextLengthError, match="holds 5 positions but 6 are needed"):
        cache.update(0, torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))


def test_for_model_matches_the_attention_layers():
    model = tiny_llama().to(torch.bfloat16)
    cache = StaticKVCache.for_model(model, batch=3, max_len=20)
    assert cache.k.shape == (2, 3, 2, 20, 8) and cache.k.dtype == torch.bfloat16


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_token_by_token_decoding_reproduces_the_full_forward(build):
    model = build()
    ids = torch.randint(0, 97, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        full = model(ids)  # (B, T, V) without a cache
        cache = StaticKVCache.for_model(model, batch=2, max_len=12)
        steps = [model(ids[:, :5], cache=cache)]  # a 5-token prefill, then one token at a time
        steps += [model(ids[:, t : t + 1], cache=cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 12
