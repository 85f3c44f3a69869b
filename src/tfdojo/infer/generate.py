"""Autoregressive generation: one prefill over the prompt, then one decode step per new token.

    prompt ──prefill (T tokens, fills the cache)──► logits ─► token₁
    token₁ ──decode_step (1 token against the cache)──► logits ─► token₂ ─► … until EOS, a stop string or the limit

Works with any decoder whose forward is ``model(input_ids, positions=, attention_mask=, cache=, last_only=)``
(Llama, GPT-2). A batch of prompts is left-padded so that every row's last prompt token is the last column.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.infer.cache import CacheFactory, StaticKVCache
from tfdojo.infer.metrics import GenerationMetrics
from tfdojo.infer.sampling import SamplingConfig, sample
from tfdojo.nn.kv import KVCache, RaggedKVCache

Prompt = str | Sequence[int]


class Tokenizer(Protocol):
    """What generation needs from a tokenizer."""

    eos_token_ids: Sequence[int]

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


@dataclass(frozen=True)
class Generation:
    """The new tokens of one prompt (prompt excluded, EOS excluded, text cut before a stop string)."""

    text: str
    token_ids: list[int]
    metrics: GenerationMetrics


class IncrementalDetokenizer:
    """Token ids in, text pieces out; a piece is released only once it decodes without a broken character.

    A byte-level tokenizer may split one UTF-8 character over several tokens, and decoding a token alone can
    drop the space a SentencePiece tokenizer puts in front of it. So each step decodes a short window of recent
    tokens and releases what it adds beyond the text already released from that window.
    """

    def __init__(self, tokenizer: Tokenizer, context: Sequence[int] = ()) -> None:
        self.tokenizer = tokenizer
        self.ids = list(context[-4:])  # a little prompt context so the first new token decodes in place
        self.start = 0  # window start: tokens before it are released and no longer decoded
        self.released = len(self.ids)  # tokens whose text has been released

    def push(self, token: int) -> str:
        """Add one token; return the newly complete text (possibly empty)."""
        self.ids.append(token)
        return self._release(final=False)

    def flush(self) -> str:
        """Whatever is still held back at the end, decoded as is."""
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        if self.released == len(self.ids):
            return ""
        before = self.tokenizer.decode(self.ids[self.start : self.released])
        after = self.tokenizer.decode(self.ids[self.start :])
        if not final and (len(after) <= len(before) or after.endswith("\ufffd")):
            return ""  # the last token ends inside a character: wait for the rest of its bytes
        self.start, self.released = self.released, len(self.ids)
        return after[len(before) :]


def _held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of text that could still grow into a stop string (not safe to stream yet)."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return longest


class _Row:
    """Text state of one prompt while it generates: tokens kept, text so far, what has been streamed."""

    def __init__(self, tokenizer: Tokenizer, prompt: Sequence[int], stops: Sequence[str]) -> None:
        self.detok = IncrementalDetokenizer(tokenizer, prompt)
        self.stops = stops
        self.token_ids: list[int] = []
        self.text = ""
        self.streamed = 0
        self.done = False

    def add(self, token: int) -> None:
        """Append a (non-EOS) token; finish if its text completes a stop string."""
        self.token_ids.append(token)
        self._extend(self.detok.push(token))

    def finish(self) -> None:
        """No more tokens: release whatever the detokenizer still holds."""
        if not self.done:
            self.done = True
            self._extend(self.detok.flush())

    def _extend(self, piece: str) -> None:
        if not piece:
            return
        searched_from = len(self.text)
        self.text += piece
        for stop in self.stops:
            at = self.text.find(stop, max(0, searched_from - len(stop) + 1))
            if at >= 0:
                self.text, self.done = self.text[:at], True
                return

    def unstreamed(self) -> str:
        """Text that is now safe to stream (never a prefix of a stop string that may still complete)."""
        end = len(self.text) if self.done else len(self.text) - _held_back(self.text, self.stops)
        piece, self.streamed = self.text[self.streamed : end], max(self.streamed, end)
        return piece


def prefill(model: nn.Module, input_ids: Tensor, cache: KVCache, attention_mask: Tensor | None = None) -> Tensor:
    """One forward over the prompts (B, T), filling the cache; returns the last position's logits (B, V)."""
    return model(input_ids, attention_mask=attention_mask, cache=cache, last_only=True)[:, -1]


def decode_step(
    model: nn.Module,
    tokens: Tensor,
    cache: KVCache,
    positions: Tensor | None = None,
    attention_mask: Tensor | None = None,
) -> Tensor:
    """One new token per row (B, 1) against the cache; returns its logits (B, V)."""
    return model(tokens, positions=positions, attention_mask=attention_mask, cache=cache, last_only=True)[:, -1]


def _as_batch(tokenizer: Tokenizer, prompt_or_ids: Prompt | Sequence[Prompt]) -> tuple[list[list[int]], bool]:
    """Token-id lists for every prompt, and whether a single prompt (not a batch) was given."""
    if isinstance(prompt_or_ids, str):
        return [tokenizer.encode(prompt_or_ids)], True
    items = prompt_or_ids.tolist() if isinstance(prompt_or_ids, Tensor) else list(prompt_or_ids)
    if items and all(isinstance(x, int) for x in items):
        return [items], True
    return [tokenizer.encode(x) if isinstance(x, str) else [int(t) for t in x] for x in items], False


def _left_pad(prompts: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor | None]:
    """(B, T) ids right-aligned, and a 1/0 mask over them (None when no row needed padding)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids, (None if bool(mask.all()) else mask)


def _stretches_context(config: object) -> bool:
    """Whether the model's RoPE is dynamic NTK, the one scaling meant to run past the trained context."""
    scaling = getattr(config, "rope_scaling", None)  # families without RoPE have no such field
    return scaling is not None and scaling.kind == "dynamic"


def _check_request(model: nn.Module, prompts: list[list[int]], max_new_tokens: int) -> None:
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if any(len(p) == 0 for p in prompts):
        raise ConfigError("a prompt is empty: give at least one token (e.g. the BOS token or some text)")
    limit = model.config.max_seq_len
    longest = max(len(p) for p in prompts)
    if longest + max_new_tokens > limit and _stretches_context(model.config):
        warnings.warn(
            f"generating up to {longest + max_new_tokens} positions, past the {limit} the model was trained on; "
            "dynamic NTK RoPE rescales its frequencies to reach them, and quality falls the further it goes",
            stacklevel=3,
        )
    elif longest + max_new_tokens > limit:
        raise ContextLengthError(
            f"the prompt has {longest} tokens and {max_new_tokens} new tokens were asked for, "
            f"{longest + max_new_tokens} in all, but the model's context is {limit} tokens; "
            f"shorten the prompt or ask for at most {max(limit - longest, 0)} new tokens"
        )


@torch.inference_mode()
def generate(
    model: nn.Module,
    tokenizer: Tokenizer,
    prompt_or_ids: Prompt | Sequence[Prompt],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: Sequence[str] | None = None,
    stream: Callable[[str], object] | None = None,
    ignore_eos: bool = False,
    cache: CacheFactory | None = None,
) -> Generation | list[Generation]:
    """Continue a prompt (text or ids) or a batch of prompts; returns a Generation, or a list for a batch.

    ``stream`` receives each new piece of text as soon as it is complete (single prompts only); the pieces
    concatenate to ``Generation.text``. ``ignore_eos`` keeps going to ``max_new_tokens`` (for benchmarks).
    ``cache`` builds the key/value cache, ``(model, batch, max_len) -> KVCache`` (default: a contiguous
    ``StaticKVCache``; see ``PagedKVCache.factory``, ``QuantizedKVCache.factory``, ``SinkKVCache.factory``).
    """
    start = time.perf_counter()
    sampling = SamplingConfig(temperature, top_k, top_p)
    prompts, single = _as_batch(tokenizer, prompt_or_ids)
    if stream is not None and not single:
        raise ConfigError("streaming works for one prompt at a time; pass a single prompt or stream=None")
    _check_request(model, prompts, max_new_tokens)
    stops = [s for s in (stop or []) if s]
    eos = set() if ignore_eos else set(tokenizer.eos_token_ids)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    rows = [_Row(tokenizer, p, stops) for p in prompts]

    prefill_start = time.perf_counter()
    input_ids, prompt_mask = _left_pad(prompts, pad_id=0)
    batch, width = input_ids.shape
    cache = (cache or StaticKVCache.for_model)(model, batch, width + max_new_tokens)
    prompt_lens = torch.tensor([len(p) for p in prompts]).unsqueeze(1)  # (B, 1)
    if prompt_mask is not None:  # the mask over cache positions grows by one column of ones per step
        full_mask = torch.ones(batch, width + max_new_tokens, dtype=torch.long)
        full_mask[:, :width] = prompt_mask
    own_rows = prompt_mask is not None and isinstance(cache, RaggedKVCache)  # e.g. sinks: rows evict apart
    if own_rows:
        cache.drop_left(width - prompt_lens)  # it keeps no padding; its key_mask and positions say where rows are

    tokens = sample(prefill(model, input_ids, cache, prompt_mask), sampling, generator)  # (B,)
    first = time.perf_counter()
    decode_steps = 0
    while True:
        for row, token in zip(rows, tokens.tolist(), strict=True):  # the one host sync per step
            if row.done:
                continue
            if token in eos:
                row.finish()
            else:
                row.add(token)
        if decode_steps + 1 == max_new_tokens:
            for row in rows:
                row.finish()
        if stream is not None:
            piece = rows[0].unstreamed()
            if piece:
                stream(piece)
        if all(row.done for row in rows):
            break
        # Unpadded rows number the new token from the cache (a sink cache's positions are its own); padded rows
        # count their real tokens: (B, 1), the position of each row's newest token.
        positions = None if prompt_mask is None else prompt_lens + decode_steps
        mask = None if prompt_mask is None else full_mask[:, : cache.length + 1]
        if own_rows:
            positions, mask = cache.positions(1), cache.key_mask(1)
        tokens = sample(decode_step(model, tokens[:, None], cache, positions, mask), sampling, generator)
        decode_steps += 1

    end = time.perf_counter()
    metrics = GenerationMetrics(
        prefill_tokens=sum(len(p) for p in prompts),
        prefill_s=first - prefill_start,
        ttft_s=first - start,
        decode_tokens=decode_steps * batch,
        decode_s=end - first,
        total_s=end - start,
    )
    results = [Generation(row.text, row.token_ids, metrics) for row in rows]
    return results[0] if single else results
