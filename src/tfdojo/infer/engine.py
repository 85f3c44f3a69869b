"""Continuous batching over a paged KV cache (Yu et al., 2022, "Orca"; Kwon et al., 2023, "vLLM").

Requests join and leave the running batch at every step instead of waiting for the whole batch to finish:

    step:  admit waiting requests while a batch slot and blocks for their prompt are free (prefix-cache hits
           reuse blocks) ─► prompt chunks, oldest first, up to ``prefill_chunk`` tokens in all (chunked prefill:
           a long prompt cannot stall the decoders for more than that; chunks of equal length share one forward)
           ─► one batched decode step for every request with a single pending token ─► retire requests that hit
           EOS or their limit, free their blocks

Rows of one forward may hold different numbers of cached positions: the paged view right-aligns them and the
key mask hides the padding, so a row's logits do not depend on what else is in the batch.

When a decode step needs a block and none is left, the most recently admitted request is *preempted*: its
blocks are freed and it goes back to the front of the queue with its prompt and the tokens generated so far. vLLM's
two policies: ``recompute`` prefills those tokens again when it is readmitted; ``swap`` copies its keys and values
to a host buffer first and copies them back into fresh blocks on readmission (memory traffic instead of compute).
Greedy outputs are the same as one request at a time under either.

``add`` and ``cancel`` may be called from other threads; ``step`` runs in one thread.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.infer.paged_cache import BlockPool, OutOfBlocksError, PagedKVCache, PagedSequence
from tfdojo.infer.sampling import SamplingConfig, filter_logits

_ids = itertools.count()


@dataclass
class Request:
    """One prompt to continue: ``logprobs`` asks for the chosen token's log-probability and the top-n others."""

    prompt: list[int]
    max_new_tokens: int = 64
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    seed: int | None = None
    eos: frozenset[int] = frozenset()
    logprobs: int | None = None
    id: int = field(default_factory=lambda: next(_ids))


@dataclass(frozen=True)
class TokenEvent:
    """A token produced for a request; ``finish`` is "stop" (EOS, not included as text), "length" or None."""

    request_id: int
    token: int
    logprob: float | None = None
    top_logprobs: tuple[tuple[int, float], ...] = ()
    finish: str | None = None


@dataclass
class _Running:
    """A request in the batch: its tokens (prompt + generated), its blocks, its random generator."""

    request: Request
    tokens: list[int]
    generated: int = 0
    seq: PagedSequence = field(default_factory=PagedSequence)
    generator: torch.Generator | None = None
    swapped: tuple[Tensor, Tensor] | None = None  # keys, values (L, positions, Hkv, D) on the host while swapped out

    @property
    def pending(self) -> list[int]:
        """Tokens not yet in the cache: the prompt left to prefill, or the one token to decode next."""
        return self.tokens[self.seq.length :]


class Engine:
    """Continuous batching of :class:`Request` s over one model and one :class:`BlockPool`."""

    def __init__(
        self,
        model: nn.Module,
        pool: BlockPool,
        *,
        max_batch: int = 32,
        prefill_chunk: int = 256,
        prefix_caching: bool = True,
        preemption: Literal["recompute", "swap"] = "recompute",
    ) -> None:
        if max_batch < 1 or prefill_chunk < 1:
            raise ConfigError(f"max_batch and prefill_chunk must be positive, got {max_batch}, {prefill_chunk}")
        if preemption not in ("recompute", "swap"):
            raise ConfigError(f"preemption must be 'recompute' or 'swap', got {preemption!r}")
        self.model, self.pool = model, pool
        self.max_batch, self.prefill_chunk, self.prefix_caching = max_batch, prefill_chunk, prefix_caching
        self.preemption = preemption
        self.waiting: deque[_Running] = deque()
        self.running: list[_Running] = []
        self._inbox: list[Request] = []
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()
        self.preemptions = 0
        self.prefix_hit_tokens = 0
        self.swapped_positions = 0

    def add(self, request: Request) -> int:
        """Queue a request (thread-safe); ContextLengthError if it could never fit the model or the pool."""
        need = len(request.prompt) + request.max_new_tokens
        if not request.prompt:
            raise ConfigError("a prompt is empty: give at least one token")
        if request.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {request.max_new_tokens}")
        limit = min(self.model.config.max_seq_len, self.pool.num_blocks * self.pool.block_size)
        if need > limit:
            raise ContextLengthError(
                f"the prompt has {len(request.prompt)} tokens and {request.max_new_tokens} new tokens were asked "
                f"for, {need} in all, but at most {limit} fit; shorten the prompt or ask for fewer tokens"
            )
        with self._lock:
            self._inbox.append(request)
        return request.id

    def cancel(self, request_id: int) -> None:
        """Drop a request wherever it is (thread-safe); its blocks are freed at the start of the next step."""
        with self._lock:
            self._cancelled.add(request_id)

    @property
    def has_work(self) -> bool:
        """Whether a step would do anything."""
        return bool(self.waiting or self.running or self._inbox)

    @torch.inference_mode()
    def step(self) -> list[TokenEvent]:
        """Admit, prefill prompt chunks, decode every ready request once, retire; the tokens produced."""
        self._take_inbox()
        self._admit()
        events: list[TokenEvent] = []
        budget, chunks = self.prefill_chunk, {}
        for r in [r for r in self.running if len(r.pending) > 1]:  # prompts in arrival order, within the budget
            if budget <= 0:
                break
            n = min(budget, len(r.pending))
            chunks.setdefault(n, []).append(r)
            budget -= n
        for n, rows in chunks.items():  # chunks of one length share a forward: fewer, larger matrix products
            events += self._forward(rows, n)
        prefilled = {id(r) for rows in chunks.values() for r in rows}
        ready = [r for r in self.running if len(r.pending) == 1 and id(r) not in prefilled]
        ready = self._make_room(ready)
        if ready:
            events += self._forward(ready, 1)
        return events

    def _take_inbox(self) -> None:
        with self._lock:
            inbox, self._inbox = self._inbox, []
            cancelled, self._cancelled = self._cancelled, set()
        for request in inbox:
            seed = request.seed
            generator = None if seed is None else torch.Generator(device=self.pool.k.device).manual_seed(seed)
            self.waiting.append(_Running(request, list(request.prompt), generator=generator))
        if cancelled:
            self.waiting = deque(r for r in self.waiting if r.request.id not in cancelled)
            for r in [r for r in self.running if r.request.id in cancelled]:
                self._retire(r)

    def _admit(self) -> None:
        """Move waiting requests into the batch while a slot and blocks for their pending prompt are free."""
        while self.waiting and len(self.running) < self.max_batch:
            r = self.waiting[0]
            hit = r.seq.adopt_prefix(self.pool, r.tokens) if self.prefix_caching and r.swapped is None else 0
            try:
                r.seq.reserve(self.pool, len(r.tokens))
            except OutOfBlocksError:
                r.seq.free(self.pool)  # give back adopted blocks; retry when requests retire
                return
            self.prefix_hit_tokens += hit
            if r.swapped is not None:
                self._swap_in(r)
            self.running.append(self.waiting.popleft())

    def _make_room(self, ready: list[_Running]) -> list[_Running]:
        """Reserve a block for each ready request's next token, preempting the newest requests when short."""
        for r in list(ready):
            while r in self.running:
                try:
                    r.seq.reserve(self.pool, r.seq.length + 1)
                    break
                except OutOfBlocksError:
                    self._preempt(self.running[-1])
        return [r for r in ready if r in self.running]

    def _preempt(self, r: _Running) -> None:
        """Free a request's blocks and queue it first: to recompute its tokens so far, or with them swapped out."""
        self.running.remove(r)
        if self.preemption == "swap" and r.seq.length:
            slots = r.seq.slots(self.pool, r.seq.length).to(self.pool.k.device)  # (positions,)
            r.swapped = self.pool.k[:, slots].cpu(), self.pool.v[:, slots].cpu()  # (L, positions, Hkv, D) copies
            self.swapped_positions += r.seq.length
        r.seq.free(self.pool)
        self.waiting.appendleft(r)
        self.preemptions += 1

    def _swap_in(self, r: _Running) -> None:
        """Copy a swapped-out request's keys and values into its new blocks (reserved already)."""
        keys, values = r.swapped
        r.swapped = None
        slots = r.seq.slots(self.pool, keys.shape[1]).to(self.pool.k.device)
        self.pool.k[:, slots] = keys.to(self.pool.k.device)
        self.pool.v[:, slots] = values.to(self.pool.v.device)
        r.seq.length = keys.shape[1]
        self._publish(r)

    def _retire(self, r: _Running) -> None:
        self.running.remove(r)
        r.seq.free(self.pool)

    def _forward(self, rows: list[_Running], n: int) -> list[TokenEvent]:
        """One batched forward over the next n pending tokens of every row; tokens for rows with none left."""
        cache = PagedKVCache(self.pool, [r.seq for r in rows])
        ids = torch.tensor([r.pending[:n] for r in rows], device=self.pool.k.device)  # (B, n)
        ragged = len({r.seq.length for r in rows}) > 1  # right-aligned rows of different lengths: mask the padding
        mask = cache.key_mask(n) if ragged else None
        logits = self.model(ids, positions=cache.positions(n), attention_mask=mask, cache=cache, last_only=True)
        for r in rows:
            self._publish(r)
        done = [i for i, r in enumerate(rows) if not r.pending]  # prompts still partly to prefill give no token
        if not done:
            return []
        return self._emit([rows[i] for i in done], logits[done, -1])

    def _publish(self, r: _Running) -> None:
        if self.prefix_caching:
            r.seq.publish_full_blocks(self.pool, r.tokens)

    def _emit(self, rows: Sequence[_Running], logits: Tensor) -> list[TokenEvent]:
        """Choose each row's next token (B, V) -> events; retire the rows that finish."""
        tokens = _choose(logits, rows)
        want = [r.request.logprobs is not None for r in rows]
        logp = torch.log_softmax(logits.float(), dim=-1) if any(want) else None
        events = []
        for i, (r, token) in enumerate(zip(rows, tokens, strict=True)):
            r.tokens.append(token)
            r.generated += 1
            finish = "stop" if token in r.request.eos else "length" if r.generated >= r.request.max_new_tokens else None
            chosen, top = None, ()
            if want[i] and logp is not None:
                chosen = float(logp[i, token])
                n = r.request.logprobs or 0
                if n:
                    values, ids = logp[i].topk(n)
                    top = tuple(zip(ids.tolist(), values.tolist(), strict=True))
            events.append(TokenEvent(r.request.id, token, chosen, top, finish))
            if finish is not None:
                self._retire(r)
        return events

    def stats(self) -> dict[str, int]:
        """Queue length, batch size, KV blocks in use and in all, preemptions, prefix-cache hits, swapped positions."""
        return {
            "waiting": len(self.waiting) + len(self._inbox),
            "running": len(self.running),
            "kv_blocks_used": self.pool.used,
            "kv_blocks_total": self.pool.num_blocks,
            "preemptions": self.preemptions,
            "prefix_hit_tokens": self.prefix_hit_tokens,
            "swapped_positions": self.swapped_positions,
        }


def _choose(logits: Tensor, rows: Sequence[_Running]) -> list[int]:
    """Next token per row (B, V): argmax for greedy rows (one call), each sampled row with its own generator."""
    chosen = logits.argmax(dim=-1).tolist()
    for i, r in enumerate(rows):
        if not r.request.sampling.greedy:
            probs = torch.softmax(filter_logits(logits[i : i + 1], r.request.sampling), dim=-1)  # (1, V)
            chosen[i] = int(torch.multinomial(probs, 1, generator=r.generator))
    return chosen
