"""An OpenAI-compatible HTTP API over the continuous-batching engine (FastAPI; SSE for streaming).

Routes: GET /health, GET /metrics (Prometheus text), GET /v1/models, POST /v1/completions,
POST /v1/chat/completions, POST /v1/embeddings. Errors use OpenAI's shape, ``{"error": {"message", "type",
"param", "code"}}``: 400 for bad JSON, bad parameters, an unknown model or a prompt past the context; 401 without
the API key when one is set; 429 when the waiting queue is full. A streaming client that disconnects cancels its
requests, which frees their KV blocks at the engine's next step.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.infer.engine import Engine, TokenEvent
from tfdojo.infer.engine import Request as EngineRequest
from tfdojo.infer.generate import _Row
from tfdojo.infer.paged_cache import BlockPool
from tfdojo.infer.sampling import SamplingConfig
from tfdojo.infer.server.runner import EngineRunner, QueueFullError
from tfdojo.infer.server.schemas import ChatRequest, CompletionRequest, EmbeddingRequest, SamplingFields


@dataclass(frozen=True)
class ServerConfig:
    """What the server serves and how much it admits: names, key, queue bound, batch and KV pool sizes."""

    model_name: str
    embed_model_name: str | None = None
    api_key: str | None = None
    max_waiting: int = 64
    max_batch: int = 32
    kv_blocks: int = 1024
    block_size: int = 16
    prefill_chunk: int = 256
    default_max_tokens: int = 256
    preemption: str = "recompute"  # or "swap": what the engine does when the KV blocks run out


class APIError(Exception):
    """An error answered in OpenAI's shape with an HTTP status."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{where}: {e.get('msg')}" if where else str(e.get("msg")))
    return "invalid request: " + "; ".join(parts)


def create_app(lm: Any, config: ServerConfig, encoder: Any = None) -> FastAPI:
    """The FastAPI app for ``lm`` (a LanguageModel) and, optionally, a sentence ``encoder`` for /v1/embeddings."""
    model = lm.decoder
    pool = BlockPool.for_model(lm.model, config.kv_blocks, config.block_size)
    engine = Engine(
        model, pool, max_batch=config.max_batch, prefill_chunk=config.prefill_chunk, preemption=config.preemption
    )
    runner = EngineRunner(engine, max_waiting=config.max_waiting)
    tokenizer = lm.tokenizer
    context = lm.config.max_seq_len

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner.start()
        yield
        runner.stop()  # after uvicorn has drained the open requests

    app = FastAPI(title="tfdojo OpenAI-compatible API", lifespan=lifespan)
    app.state.runner = runner

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(exc), "invalid_request_error")

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.kind, exc.code)

    def check_key(request: Request) -> None:
        if config.api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {config.api_key}".encode()):
            raise APIError(401, "missing or wrong API key: send 'Authorization: Bearer <key>'", code="invalid_api_key")

    authorized = [Depends(check_key)]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok" if runner.error is None else "error"}

    @app.get("/metrics", dependencies=authorized)
    async def metrics() -> PlainTextResponse:
        stats = {**engine.stats(), "tokens_generated_total": runner.tokens_generated}
        lines = [f"tfdojo_{name} {value}" for name, value in stats.items()]
        lines.append(f"tfdojo_tokens_per_second {runner.tokens_per_second():.3f}")
        return PlainTextResponse("\n".join(lines) + "\n")

    @app.get("/v1/models", dependencies=authorized)
    async def models() -> dict[str, Any]:
        names = [config.model_name] + ([config.embed_model_name] if encoder is not None else [])
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "tfdojo"} for n in names]
        return {"object": "list", "data": data}

    def prompt_request(
        body: SamplingFields, prompt: list[int], max_tokens: int | None, top: int | None
    ) -> EngineRequest:
        if body.model != config.model_name:
            raise APIError(
                400, f"unknown model {body.model!r}; this server has {config.model_name!r}", code="model_not_found"
            )
        if not prompt:
            raise APIError(400, "the prompt is empty")
        room = context - len(prompt)
        wanted = max_tokens if max_tokens is not None else min(config.default_max_tokens, room)
        if wanted < 1 or len(prompt) + wanted > context:
            raise APIError(
                400,
                f"the prompt has {len(prompt)} tokens and {wanted} more were asked for, but the context is "
                f"{context} tokens; shorten the prompt or lower max_tokens",
                code="context_length_exceeded",
            )
        sampling = SamplingConfig(body.temperature, None, body.top_p)
        eos = frozenset(tokenizer.eos_token_ids)
        return EngineRequest(prompt, wanted, sampling, body.seed, eos, top)

    def submit(template: EngineRequest, n: int) -> list[tuple[EngineRequest, asyncio.Queue[TokenEvent]]]:
        submitted = []
        try:
            for i in range(n):
                seed = None if template.seed is None else template.seed + i
                r = EngineRequest(
                    template.prompt, template.max_new_tokens, template.sampling, seed, template.eos, template.logprobs
                )
                submitted.append((r, runner.submit(r)))
        except QueueFullError as e:
            for r, _ in submitted:
                runner.cancel(r.id)
            raise APIError(429, str(e), kind="rate_limit_error", code="rate_limit_exceeded") from None
        except (ContextLengthError, ConfigError) as e:
            raise APIError(400, str(e), code="context_length_exceeded") from None
        return submitted

    async def choice_events(
        index: int, r: EngineRequest, queue: asyncio.Queue[TokenEvent], stops: Sequence[str]
    ) -> AsyncIterator[tuple[int, str, list[TokenEvent], str | None]]:
        """(index, text piece, token events, finish reason) as tokens arrive; stop strings end the request."""
        row = _Row(tokenizer, r.prompt, stops)
        while True:
            event = await queue.get()
            if event.finish == "error":
                raise APIError(500, "the engine failed while generating; see the server log", kind="server_error")
            counted = [] if event.finish == "stop" else [event]
            if event.finish == "stop":
                row.finish()
            else:
                row.add(event.token)
            finish = event.finish
            if row.done and finish is None:  # a stop string completed
                runner.cancel(r.id)
                finish = "stop"
            if finish is not None:
                row.finish()
            yield index, row.unstreamed(), counted, finish
            if finish is not None:
                return

    async def merged(
        submitted: list[tuple[EngineRequest, asyncio.Queue[TokenEvent]]], stops: Sequence[str]
    ) -> AsyncIterator[tuple[int, str, list[TokenEvent], str | None]]:
        """Every choice's pieces, interleaved as they come; cancels whatever is unfinished when closed."""
        out: asyncio.Queue[Any] = asyncio.Queue()

        async def pump(i: int, r: EngineRequest, q: asyncio.Queue[TokenEvent]) -> None:
            try:
                async for item in choice_events(i, r, q, stops):
                    await out.put(item)
            except APIError as e:
                await out.put(e)

        tasks = [asyncio.create_task(pump(i, r, q)) for i, (r, q) in enumerate(submitted)]
        try:
            finished = 0
            while finished < len(tasks):
                item = await out.get()
                if isinstance(item, APIError):
                    raise item
                finished += item[3] is not None
                yield item
        finally:
            for task in tasks:
                task.cancel()
            for r, _ in submitted:
                runner.cancel(r.id)

    async def collect(
        submitted: list[tuple[EngineRequest, asyncio.Queue[TokenEvent]]], stops: Sequence[str]
    ) -> tuple[list[str], list[list[TokenEvent]], list[str | None]]:
        """Every choice's whole text, token events and finish reason (non-streaming responses)."""
        n = len(submitted)
        texts, events_of, reasons = [""] * n, [[] for _ in range(n)], [None] * n
        async for i, piece, events, finish in merged(submitted, stops):
            texts[i] += piece
            events_of[i] += events
            reasons[i] = finish or reasons[i]
        return texts, events_of, reasons

    def logprob_entries(events: list[TokenEvent]) -> list[dict[str, Any]]:
        entries = []
        for e in events:
            top = [{"token": tokenizer.decode([t]), "logprob": lp} for t, lp in e.top_logprobs]
            text = tokenizer.decode([e.token])
            entries.append({"token": text, "logprob": e.logprob, "bytes": list(text.encode()), "top_logprobs": top})
        return entries

    def usage(prompt: list[int], completion: int) -> dict[str, int]:
        return {"prompt_tokens": len(prompt), "completion_tokens": completion, "total_tokens": len(prompt) + completion}

    def sse(payload: dict[str, Any]) -> str:
        return f"data: {json.dumps(payload)}\n\n"

    @app.post("/v1/completions", dependencies=authorized)
    async def completions(body: CompletionRequest) -> Any:
        prompt = tokenizer.encode(body.prompt) if isinstance(body.prompt, str) else list(body.prompt)
        template = prompt_request(body, prompt, body.max_tokens, body.logprobs)
        submitted = submit(template, body.n)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "object": "text_completion", "created": created, "model": config.model_name}

        def completion_logprobs(events: list[TokenEvent], offset: int) -> dict[str, Any] | None:
            if body.logprobs is None:
                return None
            entries = logprob_entries(events)
            offsets, at = [], offset
            for entry in entries:
                offsets.append(at)
                at += len(entry["token"])
            return {
                "tokens": [x["token"] for x in entries],
                "token_logprobs": [x["logprob"] for x in entries],
                "top_logprobs": [{t["token"]: t["logprob"] for t in x["top_logprobs"]} for x in entries],
                "text_offset": offsets,
            }

        if body.stream:

            async def stream() -> AsyncIterator[str]:
                completion, offsets = 0, [0] * body.n
                async for i, piece, events, finish in merged(submitted, body.stops()):
                    completion += len(events)
                    choice = {
                        "index": i,
                        "text": piece,
                        "logprobs": completion_logprobs(events, offsets[i]),
                        "finish_reason": finish,
                    }
                    offsets[i] += len(piece)
                    yield sse({**head, "choices": [choice]})
                if body.include_usage:
                    yield sse({**head, "choices": [], "usage": usage(prompt, completion)})
                yield "data: [DONE]\n\n"

            return StreamingResponse(stream(), media_type="text/event-stream")

        texts, events_of, reasons = await collect(submitted, body.stops())
        choices = [
            {
                "index": i,
                "text": texts[i],
                "logprobs": completion_logprobs(events_of[i], 0),
                "finish_reason": reasons[i],
            }
            for i in range(body.n)
        ]
        return {**head, "choices": choices, "usage": usage(prompt, sum(len(e) for e in events_of))}

    @app.post("/v1/chat/completions", dependencies=authorized)
    async def chat_completions(body: ChatRequest) -> Any:
        messages = [m.model_dump() for m in body.messages]
        prompt = tokenizer.encode(tokenizer.apply_chat_template(messages, add_generation_prompt=True))
        top = (body.top_logprobs or 0) if body.logprobs else None
        template = prompt_request(body, prompt, body.max_completion_tokens or body.max_tokens, top)
        submitted = submit(template, body.n)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "created": created, "model": config.model_name}

        def chat_logprobs(events: list[TokenEvent]) -> dict[str, Any] | None:
            return {"content": logprob_entries(events), "refusal": None} if body.logprobs else None

        if body.stream:

            async def stream() -> AsyncIterator[str]:
                chunk = {**head, "object": "chat.completion.chunk"}
                for i in range(body.n):
                    delta = {"role": "assistant", "content": ""}
                    yield sse(
                        {**chunk, "choices": [{"index": i, "delta": delta, "logprobs": None, "finish_reason": None}]}
                    )
                completion = 0
                async for i, piece, events, finish in merged(submitted, body.stops()):
                    completion += len(events)
                    choice = {
                        "index": i,
                        "delta": {"content": piece} if piece else {},
                        "logprobs": chat_logprobs(events),
                        "finish_reason": finish,
                    }
                    yield sse({**chunk, "choices": [choice]})
                if body.include_usage:
                    yield sse({**chunk, "choices": [], "usage": usage(prompt, completion)})
                yield "data: [DONE]\n\n"

            return StreamingResponse(stream(), media_type="text/event-stream")

        texts, events_of, reasons = await collect(submitted, body.stops())
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": texts[i]},
                "logprobs": chat_logprobs(events_of[i]),
                "finish_reason": reasons[i],
            }
            for i in range(body.n)
        ]
        completion = sum(len(e) for e in events_of)
        return {**head, "object": "chat.completion", "choices": choices, "usage": usage(prompt, completion)}

    @app.post("/v1/embeddings", dependencies=authorized)
    async def embeddings(body: EmbeddingRequest) -> dict[str, Any]:
        if encoder is None or body.model != config.embed_model_name:
            have = config.embed_model_name or "none"
            raise APIError(
                400, f"unknown embedding model {body.model!r}; this server has {have!r}", code="model_not_found"
            )
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        vectors = await run_in_threadpool(encoder.embed, texts)  # (N, d), L2-normalised
        tokens = int(encoder.tokenize(texts)[1].sum())  # the attention mask counts every token, specials too
        data = []
        for i, vector in enumerate(vectors):
            if body.encoding_format == "base64":
                value: Any = base64.b64encode(vector.numpy().astype(np.float32).tobytes()).decode()
            else:
                value = vector.tolist()
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {
            "object": "list",
            "data": data,
            "model": body.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return app
