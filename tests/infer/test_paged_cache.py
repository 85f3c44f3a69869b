"""Paged KV cache: the same greedy tokens as the contiguous cache and as recomputing everything (batched,
left-padded), ragged rows equal to each row's plain forward, and the block pool's sharing, reference counts,
LRU eviction and exhaustion."""

from __future__ import annotations

import pytest
import torch
from test_generate import ByteTokenizer, greedy_full_recompute, tiny_llama
from threads import one_thread  # noqa: F401  (autouse: one thread for tiny models)

from tfdojo.infer.fast_llama import FastLlama
from tfdojo.infer.generate import generate
from tfdojo.infer.paged_cache import BlockPool, OutOfBlocksError, PagedKVCache, PagedSequence


@pytest.mark.parametrize("fast", [False, True])
def test_paged_generate_equals_contiguous_and_full_recompute(fast):
    model = tiny_llama()
    decoder = FastLlama(model) if fast else model
    prompts = [list(b"a"), list(b"hello there, paged world"), list(b"abc")]
    paged = generate(decoder, ByteTokenizer(), prompts, max_new_tokens=20, cache=PagedKVCache.factory(block_size=4))
    contiguous = generate(decoder, ByteTokenizer(), prompts, max_new_tokens=20)
    assert [g.token_ids for g in paged] == [g.token_ids for g in contiguous]
    assert paged[1].token_ids == greedy_full_recompute(model, prompts[1], 20)
    assert all(len(set(g.token_ids)) > 3 for g in paged)  # varied outputs: the comparison means something


def test_ragged_rows_match_each_rows_plain_forward():
    model = tiny_llama()
    pool = BlockPool.for_model(model, num_blocks=16, block_size=4)
    texts = [torch.randint(0, 256, (n,), generator=torch.Generator().manual_seed(n)) for n in (3, 9, 6)]
    seqs = [PagedSequence() for _ in texts]
    with torch.inference_mode():
        for text, seq in zip(texts, seqs, strict=True):  # prefill each row alone, then decode them together
            model(text[None, :-1], cache=PagedKVCache(pool, [seq]))
        cache = PagedKVCache(pool, seqs)
        last = torch.stack([t[-1:] for t in texts])  # (B, 1)
        got = model(last, positions=cache.positions(1), attention_mask=cache.key_mask(1), cache=cache)[:, -1]
        for row, text in enumerate(texts):
            torch.testing.assert_close(got[row], model(text[None])[0, -1], rtol=1e-5, atol=1e-5)
    assert [s.length for s in seqs] == [3, 9, 6]


def test_prefix_blocks_are_shared_and_give_the_same_logits():
    model = tiny_llama()
    pool = BlockPool.for_model(model, num_blocks=12, block_size=4)
    prompt = list(range(40, 51))  # 11 tokens: two full blocks can be shared, the rest is computed
    first = PagedSequence()
    with torch.inference_mode():
        model(torch.tensor([prompt]), cache=PagedKVCache(pool, [first]))
        first.publish_full_blocks(pool, prompt)
        second = PagedSequence()
        assert second.adopt_prefix(pool, prompt) == 8
        assert second.blocks == first.blocks[:2] and pool.refs[first.blocks[0]] == 2
        rest = torch.tensor([prompt[8:]])
        hit = model(rest, cache=PagedKVCache(pool, [second]))[0, -1]
    torch.testing.assert_close(hit, model(torch.tensor([prompt]))[0, -1], rtol=1e-5, atol=1e-5)
    other = PagedSequence()
    assert other.adopt_prefix(pool, [1, 2, 3, 4, *prompt]) == 0  # same blocks at another offset: a new prefix


def test_freed_cached_blocks_are_evicted_least_recently_used_first():
    pool = BlockPool.for_model(tiny_llama(), num_blocks=3, block_size=2)
    seqs = []
    for tokens in ([1, 2], [3, 4]):
        seq = PagedSequence()
        seq.reserve(pool, 2)
        seq.length = 2
        seq.publish_full_blocks(pool, tokens)
        seqs.append(seq)
    old, new = seqs[0].blocks[0], seqs[1].blocks[0]
    for seq in seqs:
        seq.free(pool)
    assert pool.available == 3 and pool.used == 0
    assert pool.allocate() not in (old, new)  # the free list is used before any cached block
    assert pool.allocate() == old  # then the least recently released cached block
    assert PagedSequence().adopt_prefix(pool, [1, 2, 9]) == 0  # evicted: no longer found
    assert PagedSequence().adopt_prefix(pool, [3, 4, 9]) == 2  # still cached


def test_an_exhausted_pool_raises_and_changes_nothing():
    pool = BlockPool.for_model(tiny_llama(), num_blocks=2, block_size=4)
    seq = PagedSequence()
    seq.reserve(pool, 8)
    with pytest.raises(OutOfBlocksError, match="more blocks are needed"):
        PagedSequence().reserve(pool, 1)
    with pytest.raises(OutOfBlocksError, match="all 2 key/value blocks"):
        pool.allocate()
    assert pool.used == 2
