"""The one-call C decode step: its logits against an fp64 oracle and the eager decoder, which steps it takes."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from test_compiled_decode import _steps
from test_quant import dequantized_copy, tiny_bf16_llama

from tfdojo.errors import ContextLengthError
from tfdojo.infer import gemv_kernel, native_step
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.compiled_decode import CompiledDecoder
from tfdojo.infer.native_step import NativeDecoder, ThreadChoice, native_supported
from tfdojo.infer.quant_llama import QuantLlama, quantized_decoder
from tfdojo.models.llama import Llama, LlamaConfig

pytestmark = pytest.mark.skipif(gemv_kernel.library() is None, reason="our AVX2 kernels are not built on this machine")


def biased_bf16_llama() -> Llama:
    """Three layers with every bias a Llama may have (Qwen2's QKV bias, HF's attention and MLP biases)."""
    torch.manual_seed(3)
    config = LlamaConfig(
        vocab_size=256, dim=64, n_layers=3, n_heads=4, n_kv_heads=1, ffn_hidden=64, max_seq_len=64,
        qkv_bias=True, out_bias=True, mlp_bias=True,
    )  # fmt: skip
    model = Llama(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.to(torch.bfloat16).requires_grad_(False)


@pytest.mark.parametrize(
    ("build", "quant"), [(tiny_bf16_llama, "int4"), (tiny_bf16_llama, "int8"), (biased_bf16_llama, "int4")]
)
def test_native_steps_match_the_fp64_model_of_the_codes_and_the_eager_greedy_path(build, quant):
    """Teacher-forced steps: the C step's error against the fp64 model whose weights are the codes is at most the
    eager decoder's plus one bf16 step at the largest logit; its free-running greedy tokens equal eager's, or split
    only where eager's own top two are within that. The cache it leaves holds eager's keys and values."""
    model = build()
    oracle = dequantized_copy(model, quant)
    native = NativeDecoder(QuantLlama(model, quant))
    eager = native.decoder
    g = torch.Generator().manual_seed(1)
    for prompt, new in ((1, 30), (7, 20)):
        ids = torch.randint(0, 256, (prompt + new,), generator=g).tolist()
        path, eager_logits = _steps(eager, ids, prompt, prompt + new, follow=True)
        _, native_logits = _steps(native, path, prompt, prompt + new, follow=False)
        with torch.inference_mode():
            exact = oracle(torch.tensor([path]))[0, prompt - 1 :]  # (new + 1, V)
        eager_error = (eager_logits - exact).abs().max()
        ulp = torch.finfo(torch.bfloat16).eps * exact.abs().max()
        assert (native_logits - exact).abs().max() <= eager_error + ulp
        own, _ = _steps(native, ids, prompt, prompt + new, follow=True)
        split = next((t for t in range(prompt, len(ids)) if own[t] != path[t]), None)
        if split is not None:
            top2 = eager_logits[split - prompt].topk(2).values
            assert top2[0] - top2[1] <= eager_error + ulp, f"native greedy split at a clear choice (step {split})"
    caches = []
    for decoder in (eager, native):
        cache = StaticKVCache.for_model(decoder, batch=1, max_len=12)
        with torch.inference_mode():
            for t in range(12):
                decoder(torch.tensor([[path[t]]]), cache=cache)
        caches.append(torch.stack([cache.k, cache.v]).float())
    scale = caches[0].abs().max()
    assert (caches[1] - caches[0]).abs().max() <= 2 * torch.finfo(torch.bfloat16).eps * scale


def test_only_batch1_steps_at_the_cache_position_on_a_bf16_cache_take_the_c_step():
    native = NativeDecoder(QuantLlama(tiny_bf16_llama(), "int4"))
    cache = StaticKVCache.for_model(native, batch=1, max_len=8)
    one = torch.zeros(1, 1, dtype=torch.long)
    assert native.applies(one, None, None, cache)  # an empty cache too: the first token of a prompt-less run
    cache.advance(3)
    assert native.applies(one, torch.tensor([[3]]), None, cache)
    assert not native.applies(one, torch.tensor([[2]]), None, cache)  # a padded row's own numbering
    assert not native.applies(torch.zeros(1, 2, dtype=torch.long), None, None, cache)  # a prompt
    assert not native.applies(one, None, torch.ones(1, 4), cache)  # a padding mask
    assert not native.applies(one, None, None, None)  # no cache
    assert not native.applies(torch.tensor([[256]]), None, None, cache)  # past the vocabulary: eager's IndexError
    fp32 = StaticKVCache(2, 1, 2, 8, 16, dtype=torch.float32)
    fp32.advance(3)
    assert not native.applies(one, None, None, fp32)
    batch2 = StaticKVCache.for_model(native, batch=2, max_len=8)
    assert not native.applies(one, None, None, batch2)
    for layers, heads, size in ((1, 2, 16), (3, 2, 16), (2, 1, 16), (2, 2, 8)):  # another model's cache
        assert not native.applies(one, None, None, StaticKVCache(layers, 1, heads, 8, size, dtype=torch.bfloat16))
    assert native.applies(one, None, None, StaticKVCache(2, 1, 2, 8, 16, dtype=torch.bfloat16))  # this model's
    cache.advance(5)
    assert not native.applies(one, None, None, cache)  # full: the wrapped decoder raises the named error


def test_a_full_cache_and_an_unknown_token_are_the_eager_decoders_named_errors():
    native = NativeDecoder(QuantLlama(tiny_bf16_llama(), "int8"))
    cache = StaticKVCache.for_model(native, batch=1, max_len=4)
    with torch.inference_mode():
        native(torch.tensor([[1, 2, 3, 4]]), cache=cache)
        with pytest.raises(ContextLengthError, match="holds 4 positions"):
            native(torch.tensor([[5]]), cache=cache)
        cache.truncate(2)
        with pytest.raises(IndexError):
            native(torch.tensor([[10_000]]), cache=cache)
    assert cache.length == 2  # nothing was committed by the refused steps


def test_load_decodes_natively_by_default_compiled_when_asked_eagerly_without_kernels(monkeypatch):
    model = tiny_bf16_llama()
    assert isinstance(quantized_decoder(model, "int4"), NativeDecoder)
    assert isinstance(quantized_decoder(tiny_bf16_llama(), "int8", compile=True), CompiledDecoder)
    monkeypatch.setattr(native_step.gemv_kernel, "library", lambda: None)
    assert type(quantized_decoder(tiny_bf16_llama(), "int4")) is QuantLlama


def test_a_sliding_window_model_is_not_native():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=256, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=96, sliding_window=4)
    model = Llama(config).eval().to(torch.bfloat16).requires_grad_(False)
    decoder = QuantLlama(model, "int4")
    assert not native_supported(decoder)
    with pytest.raises(ValueError, match="cannot decode natively"):
        NativeDecoder(decoder)


class _AsAsked(ThreadChoice):
    """Always torch's thread count (the tests below must run the split they name, whatever is faster here)."""

    def pick(self, available: int) -> int:
        return available


def _decode(native: NativeDecoder, ids: list[int], threads: int) -> torch.Tensor:
    """Teacher-forced one-token steps from an empty cache on ``threads`` threads -> logits (len, V)."""
    native.threads = _AsAsked()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cache = StaticKVCache.for_model(native, batch=1, max_len=len(ids))
        with torch.inference_mode():
            return torch.cat([native(torch.tensor([[t]]), cache=cache) for t in ids], dim=1)[0]
    finally:
        torch.set_num_threads(before)


def test_threads_split_the_work_without_changing_a_bit():
    """Rows and heads are only shared out: two and three threads give the one-thread logits exactly."""
    native = NativeDecoder(QuantLlama(biased_bf16_llama(), "int4"))
    ids = torch.randint(0, 256, (20,), generator=torch.Generator().manual_seed(5)).tolist()
    alone = _decode(native, ids, 1)
    for threads in (2, 3):
        assert torch.equal(_decode(native, ids, threads), alone)


def _child_decodes(native: NativeDecoder, ids: list[int], results) -> None:
    results.put(_decode(native, ids, 2).float().tolist())  # plain numbers: a tensor would travel by shared memory


def test_a_forked_child_starts_its_own_workers():
    """Workers started before fork() do not exist in the child: its two-thread steps must not wait for them."""
    native = NativeDecoder(QuantLlama(tiny_bf16_llama(), "int8"))
    ids = [3, 1, 4, 1, 5, 9, 2, 6]
    want = _decode(native, ids, 2)  # the parent's workers are running now
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_child_decodes, args=(native, ids, results))
    child.start()
    got = results.get(timeout=120)  # a child waiting for the parent's workers would never answer
    child.join(timeout=60)
    assert torch.equal(torch.tensor(got), want.float())


def _run_choice(choice: ThreadChoice, seconds: dict[int, float], steps: int) -> list[int]:
    picked = []
    for _ in range(steps):
        threads = choice.pick(2)
        choice.record(threads, seconds[threads])
        picked.append(threads)
    return picked


def test_thread_choice_keeps_the_faster_count_and_follows_a_change_of_load():
    choice = ThreadChoice()
    quiet = _run_choice(choice, {1: 0.014, 2: 0.009}, 256)
    assert quiet[4:].count(2) >= 0.9 * len(quiet[4:]) and 1 in quiet[4:]  # mostly two threads, still probing one
    loaded = _run_choice(choice, {1: 0.015, 2: 0.030}, 256)  # another job arrives: two threads now lose
    assert loaded[-128:].count(1) >= 0.9 * 128
    assert ThreadChoice().pick(1) == 1  # nothing to choose with one thread


def test_two_python_threads_decoding_at_once_get_their_own_answers():
    """ctypes lets go of the GIL during a step, so two threads can be inside it together: each must get its own
    logits (the workers serve one caller; the other runs alone), as if it had decoded by itself. The model is wide
    enough (a step of ~1 ms) for the two threads' steps to overlap."""
    torch.manual_seed(4)
    config = LlamaConfig(vocab_size=2048, dim=384, n_layers=4, n_heads=6, n_kv_heads=2, ffn_hidden=1536, max_seq_len=64)
    native = NativeDecoder(QuantLlama(Llama(config).eval().to(torch.bfloat16).requires_grad_(False), "int4"))
    prompts = [torch.randint(0, 2048, (24,), generator=torch.Generator().manual_seed(s)).tolist() for s in (7, 8)]
    alone = [_decode(native, ids, 1) for ids in prompts]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            together = list(pool.map(lambda ids: _decode(native, ids, 2), prompts * 2))
    finally:
        torch.set_num_threads(before)
    for i, got in enumerate(together):
        assert torch.equal(got, alone[i % 2])
