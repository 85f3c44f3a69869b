"""The OpenAI-compatible server, driven by the official openai client against a server started here: streaming
and not, chat and completions, stop strings, n / seed / logprobs, 32 concurrent streams, a disconnect freeing its
KV blocks, 429 under overload, 400 / 401 errors, embeddings; on real SmolLM2, a greedy chat completion equal to
``lm.chat``."""

from __future__ import annotations

import asyncio
import base64
import threading
import time

import httpx2 as httpx
import numpy as np
import openai
import pytest
import torch
from server_fixtures import running_server, tiny_lm

from tfdojo.infer.server.app import ServerConfig

KEY = "sk-test-key"
NAME = "tiny"


@pytest.fixture(scope="module")
def one_thread_module():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: a second thread only adds spin-waiting on a loaded machine
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def server(one_thread_module, smollm2):
    config = ServerConfig(NAME, api_key=KEY, kv_blocks=256, max_waiting=64)
    with running_server(tiny_lm(smollm2.tokenizer), config) as (url, app):
        yield url, app


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server[0], api_key=KEY, max_retries=0, timeout=120)


def metrics(url: str) -> dict[str, float]:
    text = httpx.get(url.removesuffix("/v1") + "/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    return {line.split()[0].removeprefix("tfdojo_"): float(line.split()[1]) for line in text.splitlines()}


def wait_until(check, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not check():
        assert time.time() < deadline, "timed out waiting for the server"
        time.sleep(0.05)


def test_health_and_models(server, client):
    assert httpx.get(server[0].removesuffix("/v1") + "/health").json() == {"status": "ok"}
    assert [m.id for m in client.models.list().data] == [NAME]


def test_streamed_completion_equals_the_whole_one(client):
    args = {"model": NAME, "prompt": "Once upon a time", "max_tokens": 20, "temperature": 0}
    whole = client.completions.create(**args)
    pieces = list(client.completions.create(**args, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in pieces if c.choices)
    assert text == whole.choices[0].text and len(text) > 0
    assert whole.choices[0].finish_reason == "length" == [c for c in pieces if c.choices][-1].choices[0].finish_reason
    assert whole.usage.completion_tokens == 20 == pieces[-1].usage.completion_tokens
    assert whole.usage.prompt_tokens == 4


def test_chat_streamed_and_not(client):
    args = {"model": NAME, "messages": [{"role": "user", "content": "Hi there"}], "max_tokens": 12, "temperature": 0}
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(**args, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.choices[0].message.content
    assert whole.choices[0].message.role == "assistant" and whole.usage.completion_tokens == 12


def test_stop_string_cuts_the_text(client):
    args = {"model": NAME, "prompt": "The answer is", "max_tokens": 30, "temperature": 0}
    full = client.completions.create(**args).choices[0].text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    assert stop.strip(), full
    for stream in (False, True):
        if stream:
            chunks = list(client.completions.create(**args, stop=[stop], stream=True))
            text, reason = "".join(c.choices[0].text for c in chunks), chunks[-1].choices[0].finish_reason
        else:
            choice = client.completions.create(**args, stop=[stop]).choices[0]
            text, reason = choice.text, choice.finish_reason
        assert text == full[: full.index(stop)] and reason == "stop"


def test_n_seed_and_logprobs(client):
    args = {"model": NAME, "prompt": "Sample", "max_tokens": 8, "temperature": 1.0, "seed": 3, "n": 2}
    first, again = client.completions.create(**args), client.completions.create(**args)
    assert [c.text for c in first.choices] == [c.text for c in again.choices]
    assert first.choices[0].text != first.choices[1].text  # seeds 3 and 4
    greedy = client.completions.create(model=NAME, prompt="Sample", max_tokens=5, temperature=0, logprobs=2)
    lp = greedy.choices[0].logprobs
    assert "".join(lp.tokens) == greedy.choices[0].text and len(lp.token_logprobs) == 5
    for chosen, top in zip(lp.token_logprobs, lp.top_logprobs, strict=True):
        assert chosen == pytest.approx(max(top.values())) and chosen < 0  # greedy takes the most likely token


def test_chat_logprobs_name_the_greedy_token_first(client):
    reply = client.chat.completions.create(
        model=NAME,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=4,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    content = reply.choices[0].logprobs.content
    assert "".join(t.token for t in content) == reply.choices[0].message.content and len(content) == 4
    for entry in content:
        assert entry.top_logprobs[0].token == entry.token
        assert entry.logprob == pytest.approx(entry.top_logprobs[0].logprob)
        assert entry.top_logprobs[0].logprob >= entry.top_logprobs[1].logprob


def test_32_concurrent_streams_all_finish_with_the_one_at_a_time_text(server, client):
    prompts = [f"Request number {i}:" for i in range(32)]
    alone = {
        p: client.completions.create(model=NAME, prompt=p, max_tokens=10, temperature=0).choices[0].text
        for p in prompts[:4]
    }

    async def all_streams() -> list[str]:
        aclient = openai.AsyncOpenAI(base_url=server[0], api_key=KEY, max_retries=0, timeout=300)

        async def one(prompt: str) -> str:
            stream = await aclient.completions.create(
                model=NAME, prompt=prompt, max_tokens=10, temperature=0, stream=True
            )
            chunks = [c async for c in stream]
            assert chunks[-1].choices[0].finish_reason == "length"
            return "".join(c.choices[0].text for c in chunks)

        return await asyncio.gather(*(one(p) for p in prompts))

    texts = asyncio.run(all_streams())
    assert len(texts) == 32 and all(texts)
    assert texts[:4] == [alone[p] for p in prompts[:4]]
    wait_until(lambda: metrics(server[0])["kv_blocks_used"] == 0)


def test_a_disconnected_stream_is_cancelled_and_frees_its_blocks(server, client):
    stream = client.completions.create(model=NAME, prompt="Go on forever", max_tokens=400, temperature=0, stream=True)
    for _, _chunk in zip(range(3), stream, strict=False):
        pass
    assert metrics(server[0])["kv_blocks_used"] > 0
    stream.close()  # the client hangs up mid-stream
    wait_until(lambda: metrics(server[0])["kv_blocks_used"] == 0 and metrics(server[0])["running"] == 0)


def test_errors_have_the_openai_shape(server, client):
    bad_json = httpx.post(server[0] + "/completions", content=b"{not json", headers={"Authorization": f"Bearer {KEY}"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError, match="unknown model"):
        client.completions.create(model="gpt-9", prompt="x", max_tokens=2)
    with pytest.raises(openai.BadRequestError) as past:
        client.completions.create(model=NAME, prompt="word " * 600, max_tokens=2)
    assert past.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.completions.create(model=NAME, prompt="x", max_tokens=2, temperature=7)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model=NAME, prompt="x", max_tokens=0)
    keyless = openai.OpenAI(base_url=server[0], api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        keyless.models.list()


def test_a_full_queue_answers_429(one_thread_module, smollm2):
    config = ServerConfig(NAME, max_batch=1, max_waiting=1, kv_blocks=64)
    with running_server(tiny_lm(smollm2.tokenizer), config) as (url, _):
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
        busy = client.completions.create(model=NAME, prompt="Busy", max_tokens=300, temperature=0, stream=True)
        next(iter(busy))  # running: the only batch slot is taken
        waiter = threading.Thread(
            target=lambda: client.completions.create(model=NAME, prompt="Wait", max_tokens=2, temperature=0)
        )
        waiter.start()
        wait_until(lambda: metrics(url)["waiting"] == 1)
        with pytest.raises(openai.RateLimitError):
            client.completions.create(model=NAME, prompt="One too many", max_tokens=2)
        busy.close()
        waiter.join(timeout=60)
        assert not waiter.is_alive()


@pytest.mark.slow
def test_embeddings_equal_the_encoder(one_thread_module, smollm2, minilm):
    config = ServerConfig(NAME, embed_model_name="all-minilm-l6-v2")
    with running_server(tiny_lm(smollm2.tokenizer), config, minilm) as (url, _):
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        texts = ["a cat on a mat", "stock markets fell"]
        expected = minilm.embed(texts)
        for fmt in (openai.omit, "float"):  # by default the client asks for base64 and decodes it itself
            got = client.embeddings.create(model="all-minilm-l6-v2", input=texts, encoding_format=fmt)
            torch.testing.assert_close(torch.tensor([d.embedding for d in got.data]), expected, rtol=1e-5, atol=1e-6)
        raw = client.embeddings.create(model="all-minilm-l6-v2", input=texts, encoding_format="base64")
        vectors = [np.frombuffer(base64.b64decode(d.embedding), dtype=np.float32) for d in raw.data]
        torch.testing.assert_close(torch.tensor(np.stack(vectors)), expected, rtol=1e-5, atol=1e-6)
        assert raw.usage.prompt_tokens == 7 + 5  # [CLS] a cat on a mat [SEP], [CLS] stock markets fell [SEP]


@pytest.mark.slow
def test_greedy_chat_equals_lm_chat_on_smollm2(smollm2):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    expected = smollm2.chat(messages, max_new_tokens=16)
    with running_server(smollm2, ServerConfig("smollm2-135m-instruct", kv_blocks=64)) as (url, _):
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=300)
        got = client.chat.completions.create(
            model="smollm2-135m-instruct", messages=messages, max_tokens=16, temperature=0
        )
    assert got.choices[0].message.content == expected.text and len(expected.text) > 0
