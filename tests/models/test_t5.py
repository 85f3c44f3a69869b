"""T5 against HF transformers' T5ForConditionalGeneration (logits and greedy generation), through our loader."""

from __future__ import annotations

import pytest
import torch
from transformers import T5Config as HFT5Config
from transformers import T5ForConditionalGeneration

from tfdojo.infer.cache import StaticKVCache
from tfdojo.nn.relative_position import relative_position_bucket
from tfdojo.weights.hf import load_hf_folder

VOCAB = 64
TOL = {"atol": 1e-5, "rtol": 1e-4}


def tiny_hf_t5(feed_forward_proj: str) -> T5ForConditionalGeneration:
    """2 encoder and 3 decoder layers; 8 buckets up to distance 20, so 30-token inputs reach the log buckets."""
    torch.manual_seed(0)
    config = HFT5Config(
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=3,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        feed_forward_proj=feed_forward_proj,
        decoder_start_token_id=0,
        dropout_rate=0.0,
    )
    model = T5ForConditionalGeneration(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 0.5 * torch.randn_like(p))  # norms away from 1, varied scales
        # unit-norm embedding rows: otherwise the (tied) head's argmax is the longest row, whatever the input
        model.shared.weight.div_(model.shared.weight.norm(dim=-1, keepdim=True))
    return model


def _saved_and_loaded(tmp_path, feed_forward_proj: str):
    """(HF reference, our Seq2SeqLM loaded from its save_pretrained folder)."""
    hf = tiny_hf_t5(feed_forward_proj)
    hf.save_pretrained(tmp_path)
    return hf, load_hf_folder(tmp_path)


def _source(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A (2, 30) batch whose second row has 6 padding tokens at the end."""
    ids = torch.randint(2, VOCAB, (2, 30), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids)
    mask[1, -6:] = 0
    return ids.masked_fill(mask == 0, 0), mask


@pytest.mark.parametrize("feed_forward_proj", ["relu", "gated-gelu"])
def test_logits_match_hf(tmp_path, feed_forward_proj):
    hf, lm = _saved_and_loaded(tmp_path, feed_forward_proj)
    assert lm.config.gated_ffn == feed_forward_proj.startswith("gated") and lm.config.n_decoder_layers == 3
    ids, mask = _source(0)
    target = torch.randint(2, VOCAB, (2, 25), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=target).logits
        torch.testing.assert_close(lm.model(ids, target, attention_mask=mask), expected, **TOL)


def test_greedy_generation_matches_hf(tmp_path):
    hf, lm = _saved_and_loaded(tmp_path, "gated-gelu")
    ids, mask = _source(2)
    # use_cache=False: HF's cache breaks when the decoder is deeper than the encoder (transformers 5.23); ours caches
    expected = hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=12, use_cache=False)
    ours = lm.generate(ids, attention_mask=mask, max_new_tokens=12)
    assert len(set(expected[:, 1:].flatten().tolist())) > 2  # a non-degenerate sequence, so the check has teeth
    torch.testing.assert_close(ours, expected, atol=0, rtol=0)


def test_generation_stops_at_eos_and_pads_like_hf(tmp_path):
    """EOS chosen as a token one row emits mid-way: that row is padded after it, the other runs on."""
    hf, lm = _saved_and_loaded(tmp_path, "relu")
    ids, mask = _source(3)
    free_run = hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=10, use_cache=False)
    eos = int(free_run[0, 4])
    lm.config.eos_token_id = eos
    expected = hf.generate(
        ids, attention_mask=mask, do_sample=False, max_new_tokens=10, use_cache=False, eos_token_id=eos
    )
    torch.testing.assert_close(lm.generate(ids, attention_mask=mask, max_new_tokens=10), expected, atol=0, rtol=0)


def test_cached_decoding_equals_the_plain_forward(tmp_path):
    """Decode steps against the self-attention cache and projected-once cross K/V give the full forward's logits."""
    _, lm = _saved_and_loaded(tmp_path, "gated-gelu")
    ids, mask = _source(4)
    target = torch.randint(2, VOCAB, (2, 9), generator=torch.Generator().manual_seed(5))
    model = lm.model
    with torch.no_grad():
        full = model(ids, target, attention_mask=mask)  # (2, 9, V): every position at once, no cache
        memory = model.encode(ids, mask)
        kv, cache = model.memory_kv(memory), StaticKVCache(3, 2, 4, 9, 8)  # 3 decoder layers, 4 heads of 8
        steps = [model.decode(target[:, :4], kv, mask, cache=cache)]  # a 4-token prefix, then one at a time
        steps += [model.decode(target[:, t : t + 1], kv, mask, cache=cache) for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, **TOL)


def test_cached_generation_projects_the_source_once_and_equals_uncached(tmp_path):
    _, lm = _saved_and_loaded(tmp_path, "relu")
    ids, mask = _source(6)
    calls = []
    hook = lm.model.decoder_layers[0].cross_attn.k_proj.register_forward_hook(lambda *_: calls.append(1))
    cached = lm.generate(ids, attention_mask=mask, max_new_tokens=10)
    hook.remove()
    assert len(calls) == 1  # the cross-attention keys of the source: once, not once per step
    torch.testing.assert_close(cached, lm.generate(ids, attention_mask=mask, max_new_tokens=10, use_cache=False))
    options = {"temperature": 1.5, "top_k": 5, "top_p": 0.9, "seed": 4}
    sampled = lm.generate(ids, attention_mask=mask, max_new_tokens=10, **options)
    uncached = lm.generate(ids, attention_mask=mask, max_new_tokens=10, use_cache=False, **options)
    torch.testing.assert_close(sampled, uncached)  # the same draws from the same distributions
    assert not torch.equal(sampled, cached)  # a hot temperature leaves the greedy path
    top1 = lm.generate(ids, attention_mask=mask, max_new_tokens=10, temperature=1.0, top_k=1, seed=0)
    torch.testing.assert_close(top1, cached)  # top-1 sampling is greedy decoding


def _bucket_reference(relative: int, bidirectional: bool, num_buckets: int, max_distance: int) -> int:
    """The bucket rule of Raffel et al. (2020) written for one integer, in float64."""
    import math

    bucket = 0
    if bidirectional:
        num_buckets //= 2
        bucket = num_buckets if relative > 0 else 0
        distance = abs(relative)
    else:
        distance = max(-relative, 0)
    exact = num_buckets // 2
    if distance < exact:
        return bucket + distance
    far = exact + int(math.log(distance / exact) / math.log(max_distance / exact) * (num_buckets - exact))
    return bucket + min(far, num_buckets - 1)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_buckets_follow_the_paper_rule(bidirectional):
    relative = torch.arange(-300, 301)
    ours = relative_position_bucket(relative, bidirectional=bidirectional, num_buckets=32, max_distance=128)
    expected = [_bucket_reference(r, bidirectional, 32, 128) for r in relative.tolist()]
    assert ours.tolist() == expected
