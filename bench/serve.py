"""Serving SmolLM2-135M: continuous batching, the HTTP server under load, prefix caching, speculative decoding.

    .venv/bin/python bench/serve.py            # writes bench/results/serve.json
    .venv/bin/python bench/serve.py --llama-cpp .venv-bench/bin/python   # + llama.cpp's server (make bench)

1. Engine: aggregate tokens/s with 1, 4, 16 and 32 requests in flight (32-token prompts, 32 new tokens, EOS
   ignored), in-process, against the single-stream rate of the same round (rounds alternate the levels); and
   the steady state: decode steps of 1, 4, 16 and 32 running requests, interleaved.
2. Server: ``tfdojo serve``'s app under uvicorn on 127.0.0.1, 1 / 4 / 16 / 32 concurrent streaming clients (the
   openai AsyncOpenAI client): aggregate tokens/s, time to first token and inter-token gaps (p50 / p95).
   The same load against llama.cpp's OpenAI server (``llama_cpp.server`` from llama-cpp-python[server], in the
   bench environment, its own process, one thread, the same GGUF as stored: Q4_1 layers where ours runs fp32).
   Preemption: a burst under a pool too small for it, with recompute and with swap.
3. Prefix cache: time to first token of a chat whose ~1k-token system prompt is new (miss) or was served before
   (hit), and the same pair with prefix caching off.
4. Speculative decoding on an edit workload (rewrite a paragraph with small changes, greedy): prompt lookup and
   a draft model made of SmolLM2's first 8 layers (self-speculation), against plain decoding: acceptance rate
   and speed-up, identical tokens checked.

The machine is shared: the 1-minute load average is recorded before and after each section. One torch thread.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import openai
import torch
import uvicorn

import tfdojo
from tfdojo.infer.engine import Engine, Request
from tfdojo.infer.fast_llama import fast_decoder
from tfdojo.infer.paged_cache import BlockPool
from tfdojo.infer.server.app import ServerConfig, create_app
from tfdojo.infer.speculative import DraftModel, PromptLookup, speculative_generate
from tfdojo.weights.registry import BUNDLED

RESULTS = Path(__file__).parent / "results"
NAME = "smollm2-135m-instruct"


def load() -> float:
    return round(os.getloadavg()[0], 2)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def engine_throughput(lm, concurrency: int, new_tokens: int = 32) -> dict[str, float]:
    """All ``concurrency`` requests submitted at once; tokens produced / wall time until the last finishes, and
    the decode-phase rate (from the step after the last prompt was prefilled)."""
    engine = Engine(lm.decoder, BlockPool.for_model(lm.model, 512, 16), max_batch=32)
    prompt = lm.tokenizer.encode("Write a short story about a robot who learns to paint. " * 3)[:32]
    for i in range(concurrency):
        engine.add(Request([*prompt[:-1], prompt[-1] + i], max_new_tokens=new_tokens))  # distinct prompts
    start, produced, decode_start, decode_tokens = time.perf_counter(), 0, None, 0
    while engine.has_work:
        events = engine.step()
        produced += len(events)
        if decode_start is not None:
            decode_tokens += len(events)
        elif not engine.waiting and all(len(r.pending) == 1 for r in engine.running):
            decode_start = time.perf_counter()
    end = time.perf_counter()
    decode_s = end - decode_start if decode_start is not None else 0.0
    return {
        "concurrency": concurrency,
        "tokens": produced,
        "seconds": end - start,
        "tok_s": produced / (end - start),
        "decode_phase_tok_s": decode_tokens / decode_s if decode_s else 0.0,
    }


def engine_rounds(lm, rounds: int) -> list[dict[str, float]]:
    """Every concurrency once per round, each round's rates divided by that round's single-stream rates (the
    load drifts between rounds); medians of rates and ratios over rounds, and the ratios' min and max."""
    levels = (1, 4, 16, 32)
    runs = [[engine_throughput(lm, c) for c in levels] for _ in range(rounds)]
    rows = []
    for i, c in enumerate(levels):
        ratios = [run[i]["tok_s"] / run[0]["tok_s"] for run in runs]
        decode_ratios = [run[i]["decode_phase_tok_s"] / run[0]["decode_phase_tok_s"] for run in runs]
        rows.append(
            {
                "concurrency": c,
                "tokens": runs[0][i]["tokens"],
                "tok_s": statistics.median(run[i]["tok_s"] for run in runs),
                "decode_phase_tok_s": statistics.median(run[i]["decode_phase_tok_s"] for run in runs),
                "vs_single": statistics.median(ratios),
                "vs_single_min": min(ratios),
                "vs_single_max": max(ratios),
                "decode_phase_vs_single": statistics.median(decode_ratios),
                "vs_single_per_round": ratios,
            }
        )
    return rows


def steady_decode(lm, levels: tuple[int, ...] = (1, 4, 16, 32), steps: int = 12) -> list[dict[str, float]]:
    """Steady state: one engine per level with every request prefilled and far from done; their decode steps
    interleaved (one step of each level in turn, ``steps`` times), so load drift hits every level alike."""
    prompt = lm.tokenizer.encode("Write a short story about a robot who learns to paint. " * 3)[:32]
    engines = {}
    for c in levels:
        engine = Engine(lm.decoder, BlockPool.for_model(lm.model, 512, 16), max_batch=max(levels))
        for i in range(c):
            engine.add(Request([*prompt[:-1], prompt[-1] + i], max_new_tokens=steps + 8))
        engine.step()  # admits every request (the batch and the pool fit them all) and starts the prompts
        while any(len(r.pending) > 1 for r in engine.running):
            engine.step()
        engines[c] = engine
    times: dict[int, list[float]] = {c: [] for c in levels}
    for _ in range(steps):
        for c, engine in engines.items():
            start = time.perf_counter()
            engine.step()
            times[c].append(time.perf_counter() - start)
    single = 1 / statistics.median(times[levels[0]])
    rows = []
    for c in levels:
        step_s = statistics.median(times[c])
        rows.append({"concurrency": c, "step_ms": step_s * 1e3, "tok_s": c / step_s, "vs_single": c / step_s / single})
    return rows


def preemption(lm, requests: int = 16, new_tokens: int = 48, blocks: int = 48) -> dict[str, object]:
    """The same burst under a pool too small for it (each request needs 5 blocks of 16 by its end, 80 in all),
    once per policy: wall time, preemptions, positions swapped, and whether the outputs agree."""
    prompt = lm.tokenizer.encode("Write a short story about a robot who learns to paint. " * 3)[:32]
    out: dict[str, object] = {"requests": requests, "new_tokens": new_tokens, "pool_blocks": blocks}
    tokens = {}
    for policy in ("recompute", "swap"):
        engine = Engine(lm.decoder, BlockPool.for_model(lm.model, blocks, 16), max_batch=32, preemption=policy)
        ids = [engine.add(Request([*prompt[:-1], prompt[-1] + i], max_new_tokens=new_tokens)) for i in range(requests)]
        produced: dict[int, list[int]] = {i: [] for i in ids}
        start = time.perf_counter()
        while engine.has_work:
            for event in engine.step():
                produced[event.request_id].append(event.token)
        seconds = time.perf_counter() - start
        tokens[policy] = [produced[i] for i in ids]
        stats = engine.stats()
        out[policy] = {
            "seconds": seconds,
            "tok_s": requests * new_tokens / seconds,
            "preemptions": stats["preemptions"],
            "swapped_positions": stats["swapped_positions"],
        }
    out["identical_outputs"] = tokens["recompute"] == tokens["swap"]
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def client_load(url: str, clients: int, new_tokens: int = 32) -> dict[str, float]:
    """``clients`` concurrent streaming completions; TTFT and inter-token gaps per stream."""
    client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)
    async with client:
        return await _client_load(client, clients, new_tokens)


async def _client_load(client: openai.AsyncOpenAI, clients: int, new_tokens: int) -> dict[str, float]:
    async def one(i: int) -> tuple[float, list[float], int]:
        start = time.perf_counter()
        stream = await client.completions.create(
            model=NAME,
            prompt=f"Client {i} asks: what is a transformer?",
            max_tokens=new_tokens,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        stamps, usage = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].text:
                stamps.append(time.perf_counter())
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        return stamps[0] - start, gaps, len(stamps) if usage is None else usage  # llama.cpp: a chunk per token

    start = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(clients)))
    seconds = time.perf_counter() - start
    ttfts = [r[0] for r in results]
    gaps = [g for r in results for g in r[1]]
    tokens = sum(r[2] for r in results)
    return {
        "clients": clients,
        "tok_s": tokens / seconds,
        "ttft_p50_s": statistics.median(ttfts),
        "ttft_p95_s": percentile(ttfts, 0.95),
        "itl_p50_s": percentile(gaps, 0.5),
        "itl_p95_s": percentile(gaps, 0.95),
    }


def loads(url: str) -> list[dict[str, float]]:
    """1, 4, 16 and 32 concurrent clients, after one short request that warms the server up."""
    asyncio.run(client_load(url, 1, new_tokens=2))
    return [asyncio.run(client_load(url, c)) for c in (1, 4, 16, 32)]


class Server:
    """The app under uvicorn in a thread."""

    def __init__(self, lm, config: ServerConfig, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(create_app(lm, config), port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()


class LlamaCppServer:
    """llama.cpp's OpenAI server in its own process, serving the bundled GGUF; requests queue, none interrupts."""

    def __init__(self, python: str, port: int) -> None:
        self.args = [
            python, "-m", "llama_cpp.server", "--model", str(BUNDLED[NAME].path()), "--model_alias", NAME,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1",
            "--n_threads_batch", "1", "--interrupt_requests", "False", "--verbose", "False",
        ]  # fmt: skip
        self.url = f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> LlamaCppServer:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                urllib.request.urlopen(f"{self.url}/models", timeout=5).close()
                return self
            except OSError:
                time.sleep(0.5)
        self.process.kill()
        raise RuntimeError(f"llama.cpp's server did not come up: {' '.join(self.args)}")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def chat_ttft(url: str, system: str, question: str) -> float:
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)
    start = time.perf_counter()
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    stream = client.chat.completions.create(model=NAME, messages=messages, max_tokens=2, temperature=0, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            ttft = time.perf_counter() - start
            break
    stream.close()
    return ttft


def prefix_cache(lm) -> dict[str, float]:
    system = "You are a careful assistant. " + " ".join(
        f"Rule {i}: answer precisely, cite the relevant section, and keep answers short." for i in range(70)
    )
    tokens = len(lm.tokenizer.encode(system))
    out: dict[str, float] = {"system_prompt_tokens": tokens}
    for caching, port in ((True, 8093), (False, 8094)):
        config = ServerConfig(NAME, kv_blocks=512)
        with Server(lm, config, port) as server:
            server.server.config.app.state.runner.engine.prefix_caching = caching
            miss = chat_ttft(server.url, system, "What is rule 3?")
            hit = chat_ttft(server.url, system, "What is rule 12?")
        tag = "on" if caching else "off"
        out[f"ttft_first_s_caching_{tag}"], out[f"ttft_second_s_caching_{tag}"] = miss, hit
    out["hit_speedup"] = out["ttft_first_s_caching_on"] / out["ttft_second_s_caching_on"]
    return out


EDIT_TEXT = (
    "The transformer architecture replaced recurrence with attention. Each layer lets every token look at every "
    "other token, weighs them by learned similarity, and mixes their values. Because the whole sequence is "
    "processed at once, training parallelises well on modern accelerators. Decoding, however, still produces one "
    "token at a time, which is why inference engines cache keys and values and batch many requests together."
)


def speculative(lm) -> dict[str, object]:
    prompt = lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": f"Repeat the following paragraph exactly, word for word:\n\n{EDIT_TEXT}"}]
    )
    new = 96
    start = time.perf_counter()
    plain = lm.generate(prompt, max_new_tokens=new)
    plain_s = time.perf_counter() - start
    draft_model = copy.deepcopy(lm.model)
    draft_model.layers = draft_model.layers[:8]
    draft_model.config = dataclasses.replace(lm.config, n_layers=8)
    drafters = {"prompt_lookup": PromptLookup(3), "draft_first_8_layers": DraftModel(fast_decoder(draft_model))}
    rows: dict[str, object] = {"plain_s": plain_s, "plain_tokens": len(plain.token_ids)}
    for name, drafter in drafters.items():
        for k in (4, 8):
            result = speculative_generate(lm.decoder, lm.tokenizer, prompt, drafter, k=k, max_new_tokens=new)
            rows[f"{name}_k{k}"] = {
                "identical_tokens": result.token_ids == plain.token_ids,
                "acceptance": result.acceptance,
                "target_forwards": result.target_forwards,
                "seconds": result.seconds,
                "speedup": plain_s / result.seconds,
            }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="engine,steady,server,prefix,speculative", help="comma-separated subset")
    parser.add_argument("--llama-cpp", default="", help="the bench environment's python, for llama.cpp's server")
    parser.add_argument("--rounds", type=int, default=3, help="engine rounds (each runs every concurrency)")
    args = parser.parse_args()
    sections = args.sections.split(",")
    torch.manual_seed(0)
    torch.set_num_threads(1)  # on a loaded 2-core machine a second spin-waiting thread costs more than it gives
    lm = tfdojo.load(NAME)
    path = RESULTS / "serve.json"
    report: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    report |= {
        "date": now(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if "engine" in sections:
        before = load()
        engine = engine_rounds(lm, args.rounds)
        for row in engine:
            print(
                f"engine  {row['concurrency']:>2} in flight: {row['tok_s']:6.1f} tok/s ({row['vs_single']:.2f}x, "
                f"rounds {row['vs_single_min']:.2f}-{row['vs_single_max']:.2f}); decode phase "
                f"{row['decode_phase_tok_s']:6.1f} tok/s ({row['decode_phase_vs_single']:.2f}x)"
            )
        report["engine"] = {
            "rows": engine,
            "rounds": args.rounds,
            "load_before": before,
            "load_after": load(),
            "date": now(),
        }

    if "steady" in sections:
        before = load()
        steady = steady_decode(lm)
        for row in steady:
            print(
                f"steady  {row['concurrency']:>2} decoding: step {row['step_ms']:6.1f} ms, {row['tok_s']:6.1f} tok/s "
                f"({row['vs_single']:.2f}x)"
            )
        report["engine_steady_decode"] = {"rows": steady, "load_before": before, "load_after": load(), "date": now()}

    if "preemption" in sections:
        before = load()
        policies = preemption(lm)
        print(f"preempt {json.dumps(policies)}")
        report["preemption"] = {**policies, "load_before": before, "load_after": load(), "date": now()}

    servers = {"server": lambda: Server(lm, ServerConfig(NAME, kv_blocks=1024, max_waiting=64), 8092)}
    if args.llama_cpp:
        servers["llama_cpp_server"] = lambda: LlamaCppServer(args.llama_cpp, 8095)
    for key, start in servers.items() if "server" in sections else ():
        before = load()
        with start() as server:
            http = loads(server.url)
        for row in http:
            print(
                f"{key:<16} {row['clients']:>2} clients: {row['tok_s']:6.1f} tok/s  ttft p50 {row['ttft_p50_s']:.2f}s "
                f"p95 {row['ttft_p95_s']:.2f}s  itl p50 {row['itl_p50_s']:.2f}s p95 {row['itl_p95_s']:.2f}s"
            )
        report[key] = {"rows": http, "load_before": before, "load_after": load(), "date": now()}

    if "prefix" in sections:
        before = load()
        prefix = prefix_cache(lm)
        print(f"prefix  {prefix}")
        report["prefix_cache"] = {**prefix, "load_before": before, "load_after": load(), "date": now()}

    if "speculative" in sections:
        before = load()
        spec = speculative(lm)
        print(f"spec    {json.dumps(spec, indent=1)}")
        report["speculative"] = {**spec, "load_before": before, "load_after": load(), "date": now()}

    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
