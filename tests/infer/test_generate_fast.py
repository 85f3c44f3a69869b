"""FastLlama (fused inference-time layout) against the eager Llama it was built from: same logits, same tokens."""

from __future__ import annotations

import copy

import pytest
import torch

from tfdojo.infer import fast_llama
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.fast_llama import FastLlama, fast_decoder
from tfdojo.infer.generate import generate
from tfdojo.models.llama import Llama, LlamaConfig
from tfdojo.nn.rope import RopeScaling


class Bytes:
    eos_token_ids: set[int] = set()

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def tiny_llama(**overrides) -> Llama:
    torch.manual_seed(0)
    config = dict(vocab_size=256, dim=64, n_layers=3, n_heads=4, n_kv_heads=2, ffn_hidden=96, max_seq_len=96)
    model = Llama(LlamaConfig(**{**config, "tie_embeddings": False, **overrides})).eval()
    with torch.no_grad():  # move every parameter (norm weights, biases) off its initial value
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


SCALINGS = {  # every RoPE scaling and a sliding window; max_seq_len 16 so that dynamic NTK rescales past it
    "linear": {"rope_scaling": RopeScaling("linear", 2.0)},
    "dynamic": {"rope_scaling": RopeScaling("dynamic", 2.0, 16), "max_seq_len": 16},
    "yarn": {"rope_scaling": RopeScaling("yarn", 4.0, 24)},
    "llama3": {"rope_scaling": RopeScaling("llama3", 8.0, 24, low_freq_factor=1.0, high_freq_factor=4.0)},
    "window": {"sliding_window": 5},
}


VARIANTS = {"plain": {}, "bias": {"qkv_bias": True}, "mqa": {"n_kv_heads": 1}, **SCALINGS}


@pytest.mark.parametrize("overrides", list(VARIANTS.values()), ids=list(VARIANTS))
def test_logits_match_eager_with_and_without_cache(overrides):
    model = tiny_llama(**overrides)
    ids = torch.randint(0, 256, (2, 20), generator=torch.Generator().manual_seed(1))

    def stepped(m):  # a 12-token prompt, then 8 decode steps (dynamic NTK: each step's keys keep their θ)
        cache = StaticKVCache.for_model(m, batch=2, max_len=20)
        return torch.cat([m(ids[:, :12], cache=cache)] + [m(ids[:, t : t + 1], cache=cache) for t in range(12, 20)], 1)

    with torch.inference_mode():
        eager, eager_steps = model(ids), stepped(model)  # before fusion: the references
        fast = FastLlama(model)
        torch.testing.assert_close(fast(ids), eager, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(stepped(fast), eager_steps, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model(ids), eager, rtol=0, atol=0)  # the eager model is unchanged


def test_left_padded_logits_match_eager():
    model = tiny_llama()
    ids = torch.randint(0, 256, (2, 10), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[0, :4] = 0
    with torch.inference_mode():
        eager = model(ids, attention_mask=mask)
        fast = FastLlama(model)(ids, attention_mask=mask)
    torch.testing.assert_close(fast[mask.bool()], eager[mask.bool()], rtol=1e-5, atol=1e-5)


def test_bf16_keeps_the_fused_rows_shared_with_the_eager_model():
    model = tiny_llama().to(torch.bfloat16)
    ids = torch.randint(0, 256, (1, 16), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        exact = copy.deepcopy(model).float()(ids)  # the same bf16 weights, computed in fp32
        eager = model(ids).float()
        fast = FastLlama(model)
        got = fast(ids).float()
    attn, layer = model.layers[0].attn, fast.layers[0]
    assert layer.qkv.transposed is None  # no (in, out) copy in bf16
    assert attn.q_proj.weight.data_ptr() == layer.qkv.weight.data_ptr()  # the fused (out, in) rows are shared
    assert attn.v_proj.weight.untyped_storage().data_ptr() == layer.qkv.weight.untyped_storage().data_ptr()
    # the FlashAttention criterion: the fast path's rounding error at most twice the eager model's
    assert (got - exact).abs().max() <= 2 * (eager - exact).abs().max()


def test_bf16_decode_steps_meet_the_rounding_criterion():
    """One token at a time against the cache (one-row products, the fp32 one-query attention) in bf16."""
    model = tiny_llama().to(torch.bfloat16)
    ids = torch.randint(0, 256, (1, 24), generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        exact = copy.deepcopy(model).float()(ids)[:, 7:23]  # (1, 16, V): positions 7 (end of prompt) to 22
        cache = StaticKVCache.for_model(model, batch=1, max_len=24)
        eager = torch.cat([model(ids[:, :8], cache=cache)[:, -1:]] + [
            model(ids[:, t : t + 1], cache=cache) for t in range(8, 23)
        ], dim=1).float()  # fmt: skip
        fast, cache = FastLlama(model), StaticKVCache.for_model(model, batch=1, max_len=24)
        got = torch.cat([fast(ids[:, :8], cache=cache)[:, -1:]] + [
            fast(ids[:, t : t + 1], cache=cache) for t in range(8, 23)
        ], dim=1).float()  # fmt: skip
    assert got.shape == exact.shape == (1, 16, 256)
    assert (got - exact).abs().max() <= 2 * (eager - exact).abs().max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_without_onednn_the_plain_products_give_the_same_logits(monkeypatch, dtype):
    """Builds without oneDNN (or bf16 without AVX-512) fall back to F.linear / x @ W_t."""
    monkeypatch.setattr(fast_llama, "onednn_packs", lambda dtype: False)
    model = tiny_llama().to(dtype)
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        eager = model(ids).float()
        fast = FastLlama(model)
        assert fast.layers[0].qkv.packed is None
        got = fast(ids).float()
    tolerance = 1e-5 if dtype == torch.float32 else 0.05
    torch.testing.assert_close(got, eager, rtol=tolerance, atol=tolerance)


@pytest.mark.skipif(not fast_llama.onednn_packs(torch.float32), reason="this torch build has no oneDNN")
def test_fp32_uses_the_transposed_copy_for_one_row_on_one_thread_and_onednn_otherwise():
    matrix = fast_llama._Matrix(torch.randn(48, 32))
    x = torch.randn(1, 1, 32)
    rows = torch.randn(2, 5, 32)
    assert matrix.transposed is not None and matrix.packed is not None
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        torch.testing.assert_close(matrix(x), x @ matrix.transposed, rtol=0, atol=0)
        torch.set_num_threads(2)
        expected = torch.ops.mkldnn._linear_pointwise(x, matrix.packed, None, "none", [], "")
        torch.testing.assert_close(matrix(x), expected, rtol=0, atol=0)
    finally:
        torch.set_num_threads(threads)
    expected = torch.ops.mkldnn._linear_pointwise(rows, matrix.packed, None, "none", [], "")
    torch.testing.assert_close(matrix(rows), expected, rtol=0, atol=0)
    torch.testing.assert_close(matrix(rows), rows @ matrix.weight.t(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(matrix(x), x @ matrix.weight.t(), rtol=1e-5, atol=1e-5)


def test_greedy_tokens_match_eager():
    model = tiny_llama()
    eager = generate(model, Bytes(), "fast and eager", max_new_tokens=48).token_ids
    fast = generate(FastLlama(model), Bytes(), "fast and eager", max_new_tokens=48).token_ids
    assert len(set(eager)) > 4
    assert fast == eager


@pytest.mark.parametrize("overrides", [{}, SCALINGS["window"]], ids=["plain", "window"])
def test_left_padded_batch_decode_steps_equal_each_prompt_alone(overrides):
    """Prefill a left-padded batch, then decode steps with the growing mask: each row's logits are its own."""
    fast = FastLlama(tiny_llama(**overrides))
    gen = torch.Generator().manual_seed(6)
    prompts = [torch.randint(0, 256, (n,), generator=gen) for n in (9, 3, 6)]
    steps = torch.randint(0, 256, (3, 8), generator=gen)  # the tokens fed at the 8 decode steps
    width = max(len(p) for p in prompts)
    ids, mask = torch.zeros(3, width, dtype=torch.long), torch.zeros(3, width + 8, dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :], mask[row, width - len(p) :] = p, 1
    lengths = torch.tensor([len(p) for p in prompts]).unsqueeze(1)  # (B, 1)
    with torch.inference_mode():
        cache = StaticKVCache.for_model(fast, batch=3, max_len=width + 8)
        batched = [fast(ids, attention_mask=mask[:, :width], cache=cache, last_only=True)]
        for i in range(8):  # one token per row: positions count only the real tokens
            step_mask = mask[:, : width + i + 1]
            batched.append(fast(steps[:, i : i + 1], positions=lengths + i, attention_mask=step_mask, cache=cache))
        batched = torch.cat(batched, dim=1)  # (B, 9, V)
        for row, p in enumerate(prompts):
            alone_cache = StaticKVCache.for_model(fast, batch=1, max_len=len(p) + 8)
            alone = [fast(p[None], cache=alone_cache, last_only=True)]
            alone += [fast(steps[row : row + 1, i : i + 1], cache=alone_cache) for i in range(8)]
            torch.testing.assert_close(batched[row], torch.cat(alone, dim=1)[0], rtol=1e-5, atol=1e-5)


def test_scaled_and_windowed_llamas_get_the_fast_decoder():
    """Their logits are held to the eager model's above, with and without a cache, and in left-padded batches."""
    assert all(isinstance(fast_decoder(tiny_llama(**overrides)), FastLlama) for overrides in SCALINGS.values())
