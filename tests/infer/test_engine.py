"""Continuous batching: greedy outputs identical to generating one request at a time (staggered arrivals,
chunked prefill, preemption under a small pool, prefix-cache hits), seeded sampling reproducible, cancellation
and retirement free every block."""

from __future__ import annotations

import pytest
import torch
from test_generate import EOS, ByteTokenizer, tiny_llama
from threads import one_thread  # noqa: F401  (autouse: one thread for tiny models)

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.infer.engine import Engine, Request
from tfdojo.infer.fast_llama import FastLlama
from tfdojo.infer.generate import generate
from tfdojo.infer.paged_cache import BlockPool
from tfdojo.infer.sampling import SamplingConfig

PROMPTS = [b"a", b"hello there, batching world", b"abc", b"the same prefix, then one", b"xyz" * 9, b"q"]


def run(engine: Engine, requests: list[Request], arrive_every: int = 2) -> dict[int, list[int]]:
    """Feed requests one per ``arrive_every`` steps (all at once with 0), step until all finish; tokens per id."""
    out: dict[int, list[int]] = {r.id: [] for r in requests}
    pending, steps = list(requests), 0
    while pending or engine.has_work:
        while pending and (arrive_every == 0 or steps % arrive_every == 0):
            engine.add(pending.pop(0))
            if arrive_every:
                break
        for event in engine.step():
            if event.finish != "stop":
                out[event.request_id].append(event.token)
        steps += 1
        assert steps < 2000
    return out


def one_at_a_time(model, prompt: bytes, n: int) -> list[int]:
    return generate(model, ByteTokenizer(), list(prompt), max_new_tokens=n).token_ids


@pytest.mark.parametrize(
    ("fast", "blocks", "chunk", "preemption"),
    [(False, 64, 256, "recompute"), (True, 64, 4, "recompute"), (True, 12, 8, "recompute"), (True, 12, 8, "swap")],
    ids=["plain", "chunked", "preempting-recompute", "preempting-swap"],
)
def test_greedy_outputs_equal_one_request_at_a_time(fast, blocks, chunk, preemption):
    model = tiny_llama()
    decoder = FastLlama(model) if fast else model
    pool = BlockPool.for_model(model, blocks, 4)
    engine = Engine(decoder, pool, max_batch=4, prefill_chunk=chunk, preemption=preemption)
    requests = [Request(list(p), max_new_tokens=12 + 2 * i, eos=frozenset({EOS})) for i, p in enumerate(PROMPTS)]
    got = run(engine, requests)
    for r, prompt in zip(requests, PROMPTS, strict=True):
        assert got[r.id] == one_at_a_time(decoder, prompt, r.max_new_tokens)
    assert engine.pool.used == 0  # every retired request gave its blocks back
    if blocks == 12:
        assert engine.preemptions > 0  # the small pool really forced preemption
        assert (engine.swapped_positions > 0) == (preemption == "swap")  # and swapping, under that policy


def test_swap_preemption_restores_the_keys_and_values_it_copied_out():
    model = tiny_llama()
    engine = Engine(model, BlockPool.for_model(model, 16, 4), preemption="swap")
    engine.add(Request(list(b"swap these keys"), max_new_tokens=4))
    engine.step()  # prefill: 15 positions in 4 blocks
    (r,) = engine.running
    before = [t[:, r.seq.slots(engine.pool, r.seq.length)].clone() for t in (engine.pool.k, engine.pool.v)]
    engine._preempt(r)
    assert engine.pool.used == 0 and r.seq.length == 0
    engine.pool.k.normal_()  # whatever the freed blocks hold next, the swapped copy is what comes back
    engine.pool.v.normal_()
    engine._admit()
    after = [t[:, r.seq.slots(engine.pool, r.seq.length)] for t in (engine.pool.k, engine.pool.v)]
    assert r.seq.length == 15 and engine.running == [r]
    for x, y in zip(before, after, strict=True):
        assert torch.equal(x, y)


def test_an_unknown_preemption_policy_is_refused():
    model = tiny_llama()
    with pytest.raises(ConfigError, match="preemption must be"):
        Engine(model, BlockPool.for_model(model, 4, 4), preemption="drop")


def test_prompts_submitted_together_share_prefill_forwards_and_keep_the_output():
    model = tiny_llama()
    forwards = []
    model.register_forward_hook(lambda module, args, output: forwards.append(args[0].shape))
    engine = Engine(model, BlockPool.for_model(model, 64, 4), max_batch=4, prefill_chunk=16)
    prompts = [b"first prompt", b"other prompt", b"third prompt", b"short"]  # 12, 12, 12 and 5 tokens
    requests = [Request(list(p), max_new_tokens=6) for p in prompts]
    got = run(engine, requests, arrive_every=0)
    assert forwards[:2] == [(1, 12), (1, 4)]  # step 1: the first prompt, 4 tokens of the second (the budget)
    assert forwards[2] == (2, 8)  # step 2: the second's last 8 (after 4 cached) beside the third's first 8
    for r, prompt in zip(requests, prompts, strict=True):
        assert got[r.id] == one_at_a_time(model, prompt, 6)


def test_prefix_cache_hits_reuse_blocks_and_keep_the_output():
    model = tiny_llama()
    engine = Engine(model, BlockPool.for_model(model, 64, 4), max_batch=4)
    system = b"You are a helpful assistant who answers briefly. "  # 50 tokens: 12 full blocks
    prompts = [system + b"Hi!", system + b"What is a cache?"]
    requests = [Request(list(p), max_new_tokens=8) for p in prompts]
    got = run(engine, requests, arrive_every=30)  # the second arrives after the first finished
    assert engine.prefix_hit_tokens == 48
    for r, prompt in zip(requests, prompts, strict=True):
        assert got[r.id] == one_at_a_time(model, prompt, 8)


def test_seeded_sampling_is_reproducible_and_batch_independent():
    model = tiny_llama()
    sampling = SamplingConfig(temperature=1.0, top_p=0.9)

    def sampled(with_others: bool) -> list[int]:
        engine = Engine(model, BlockPool.for_model(model, 64, 4))
        mine = Request(list(b"sample me"), max_new_tokens=16, sampling=sampling, seed=7)
        others = [Request(list(b"noise"), max_new_tokens=16, sampling=sampling, seed=i) for i in range(3)]
        return run(engine, [mine, *others] if with_others else [mine])[mine.id]

    alone = sampled(False)
    assert alone == sampled(True)
    assert len(set(alone)) > 3


def test_cancel_frees_the_blocks_of_running_and_waiting_requests():
    model = tiny_llama()
    engine = Engine(model, BlockPool.for_model(model, 32, 4), max_batch=1)
    a, b = Request(list(b"first request"), max_new_tokens=50), Request(list(b"second"), max_new_tokens=50)
    engine.add(a)
    engine.add(b)
    for _ in range(3):
        engine.step()
    assert engine.pool.used > 0 and engine.stats()["waiting"] == 1
    engine.cancel(a.id)
    engine.cancel(b.id)
    assert engine.step() == [] and engine.pool.used == 0 and not engine.has_work


def test_a_request_that_cannot_fit_is_refused():
    model = tiny_llama()
    engine = Engine(model, BlockPool.for_model(model, 4, 4))
    with pytest.raises(ContextLengthError, match="at most 16 fit"):
        engine.add(Request(list(range(10)), max_new_tokens=10))


def test_logprobs_are_the_models_log_softmax():
    model = tiny_llama()
    engine = Engine(model, BlockPool.for_model(model, 16, 4))
    request = Request(list(b"log"), max_new_tokens=1, logprobs=3)
    engine.add(request)
    (event,) = engine.step()
    with torch.inference_mode():
        expected = torch.log_softmax(model(torch.tensor([list(b"log")]))[0, -1], -1)
    assert event.logprob == pytest.approx(float(expected.max()), abs=1e-4)
    assert [t for t, _ in event.top_logprobs] == expected.topk(3).indices.tolist()
