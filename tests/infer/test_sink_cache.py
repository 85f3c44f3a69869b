"""Sinks + sliding window (StreamingLLM): after eviction the cache holds exactly the keys a fresh forward over
the kept tokens computes at their cache positions; generate streams past the cache's capacity; a batch of
unequal prompts gives each prompt's tokens alone; on SmolLM2 the sinks keep perplexity flat over 4x the window
where window-only attention blows up."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_generate import ByteTokenizer, tiny_llama
from threads import one_thread  # noqa: F401  (autouse: one thread for tiny models)

from tfdojo.errors import ContextLengthError
from tfdojo.infer.cache import CacheGeometry, StaticKVCache
from tfdojo.infer.fast_llama import FastLlama
from tfdojo.infer.generate import generate
from tfdojo.infer.sink_cache import SinkKVCache


@pytest.mark.parametrize("sinks", [2, 0])
def test_evicted_cache_equals_a_fresh_forward_over_the_kept_tokens(sinks):
    model = tiny_llama()
    ids = torch.randint(0, 256, (2, 30), generator=torch.Generator().manual_seed(5))
    cache = SinkKVCache(CacheGeometry.of(model), 2, sinks=sinks, window=8, rope_theta=model.config.rope_theta, room=3)
    with torch.inference_mode():
        for start in range(0, 30, 3):
            model(ids[:, start : start + 3], cache=cache)
        n = cache.length
        kept = torch.cat([ids[:, :sinks], ids[:, 30 - (n - sinks) :]], dim=1)  # sinks, then the newest tokens
        fresh = StaticKVCache.for_model(model, 2, n)
        model(kept, cache=fresh)
    assert cache.evicted.tolist() == [30 - n] * 2 and n == sinks + 8 - 3  # room for the next 3 is kept free
    # Layer 0's keys depend only on the token and its position, so they must match exactly (re-rotated RoPE).
    torch.testing.assert_close(cache.k[0, :, :, :n], fresh.k[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cache.v[0, :, :, :n], fresh.v[0], rtol=1e-5, atol=1e-5)


def test_generate_streams_past_the_capacity_and_agrees_before_the_first_eviction():
    model = tiny_llama()
    prompt = list(b"streaming")
    options = {"max_new_tokens": 60, "ignore_eos": True}
    sink = generate(model, ByteTokenizer(), prompt, cache=SinkKVCache.factory(4, 16), **options)
    plain = generate(model, ByteTokenizer(), prompt, **options)
    assert len(sink.token_ids) == 60  # 9 + 60 positions through a 20-position cache
    first_eviction = 20 - len(prompt)  # new tokens decided before any key is dropped
    assert sink.token_ids[:first_eviction] == plain.token_ids[:first_eviction]


@pytest.mark.parametrize("fast", [False, True])
def test_unequal_prompts_batched_equal_each_prompt_alone(fast):
    model = tiny_llama()
    decoder = FastLlama(model) if fast else model
    prompts = [list(b"hi"), list(b"a longer prompt"), list(b"streaming")]  # 2, 15 and 9 tokens
    options = {"max_new_tokens": 40, "ignore_eos": True, "cache": SinkKVCache.factory(sinks=3, window=14, room=2)}
    batched = generate(decoder, ByteTokenizer(), prompts, **options)  # rows evict at different steps
    for prompt, got in zip(prompts, batched, strict=True):
        alone = generate(decoder, ByteTokenizer(), prompt, **options)
        assert got.token_ids == alone.token_ids
        assert len(set(alone.token_ids)) > 3  # varied outputs: the comparison means something
    plain = generate(decoder, ByteTokenizer(), prompts[1], max_new_tokens=40, ignore_eos=True)
    assert plain.token_ids != batched[1].token_ids  # eviction changed the continuation: it really happened


def test_a_chunk_larger_than_the_room_is_refused():
    model = tiny_llama()
    cache = SinkKVCache(CacheGeometry.of(model), 1, sinks=1, window=4, rope_theta=10000.0)
    with pytest.raises(ContextLengthError, match="holds 5 positions"):
        model(torch.zeros(1, 6, dtype=torch.long), cache=cache)


def stream_nll(model, ids: list[int], cache: SinkKVCache, chunk: int) -> torch.Tensor:
    """Per-token NLL of ids fed ``chunk`` tokens at a time through the cache."""
    logps = []
    with torch.inference_mode():
        for start in range(0, len(ids), chunk):
            logps.append(torch.log_softmax(model(torch.tensor([ids[start : start + chunk]]), cache=cache)[0], -1))
    logp = torch.cat(logps)[:-1]  # (N-1, V): the prediction of token i+1
    return -logp.gather(1, torch.tensor(ids[1:])[:, None]).squeeze(1)


@pytest.mark.slow
def test_smollm2_sinks_keep_perplexity_flat_where_window_only_blows_up(smollm2):
    window, chunk = 64, 16
    text = Path("/usr/share/common-licenses/GPL-3").read_text()  # English prose on every Debian system
    ids = smollm2.tokenizer.encode(text)[1000 : 1000 + 5 * window]  # the first window, then 4x the window
    model, g, theta = smollm2.decoder, CacheGeometry.of(smollm2.model), smollm2.config.rope_theta
    with torch.inference_mode():
        dense = -torch.log_softmax(model(torch.tensor([ids]))[0, :-1], -1).gather(1, torch.tensor(ids[1:])[:, None])
    ppl = {"dense": float(dense[window:].mean().exp())}
    for name, sinks in (("sinks", 4), ("window", 0)):
        cache = SinkKVCache(g, 1, sinks=sinks, window=window, rope_theta=theta, room=chunk)
        ppl[name] = float(stream_nll(model, ids, cache, chunk)[window:].mean().exp())
    print({k: round(v, 1) for k, v in ppl.items()})  # measured: dense 23.7, sinks 29.4, window-only 99.8
    assert ppl["sinks"] <= 1.4 * ppl["dense"]  # flat: close to full attention over 4x the window
    assert ppl["window"] >= 2.5 * ppl["sinks"]  # evicting the first tokens blows perplexity up
