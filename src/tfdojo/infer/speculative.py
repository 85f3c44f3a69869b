"""Speculative decoding (Leviathan et al., 2023; Chen et al., 2023): draft k tokens cheaply, verify them with one
forward of the target model, keep the longest acceptable prefix plus one token from the target.

    tokens … x  ─draft─►  d1 d2 d3 d4          (prompt lookup or a small draft model)
    target([x d1 d2 d3 d4]) ─► p1 … p5         one forward, five next-token distributions
    greedy:   accept di while di == argmax pi; then emit argmax p(first mismatch) — the plain greedy tokens
    sampling: accept di with probability min(1, pi(di) / qi(di)); on rejection draw from norm(max(0, pi - qi))
              and stop; if all k pass, draw the bonus token from p(k+1). Each emitted token is distributed
              exactly as the target's (the rejection rule, Leviathan et al., Theorem 1).

Drafters: *prompt lookup* (Saxena, 2023) proposes the tokens that followed the latest earlier occurrence of the
last n tokens — free, and strong when the output copies the input (editing, summarising, code); its draft is a
point mass, q = one-hot. A *draft model* (same tokenizer, fewer layers) proposes from its own distribution q.
The target's cache is rewound past rejected tokens (``StaticKVCache.truncate``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.generate import Tokenizer, _check_request
from tfdojo.infer.sampling import SamplingConfig, filter_logits


class Drafter(Protocol):
    """Proposes up to k next tokens for a context; ``q`` (k, V) is their distribution, None for a point mass."""

    def propose(
        self, tokens: Sequence[int], k: int, sampling: SamplingConfig, generator: torch.Generator | None
    ) -> tuple[list[int], Tensor | None]: ...


class PromptLookup:
    """Prompt-lookup drafting: continue the latest earlier match of the last n tokens (n = max_ngram … 1)."""

    def __init__(self, max_ngram: int = 3) -> None:
        if max_ngram < 1:
            raise ConfigError(f"max_ngram must be at least 1, got {max_ngram}")
        self.max_ngram = max_ngram

    def propose(
        self, tokens: Sequence[int], k: int, sampling: SamplingConfig, generator: torch.Generator | None
    ) -> tuple[list[int], Tensor | None]:
        """The k tokens after the latest earlier occurrence of the longest matching suffix (or none)."""
        seq = list(tokens)
        for n in range(min(self.max_ngram, len(seq) - 1), 0, -1):
            tail = seq[-n:]
            for start in range(len(seq) - n - 1, -1, -1):  # latest match first, never the suffix itself
                if seq[start : start + n] == tail:
                    return seq[start + n : start + n + k], None
        return [], None


class DraftModel:
    """A small model with the target's tokenizer, decoding k tokens ahead against its own cache."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.cache = StaticKVCache.for_model(model, 1, model.config.max_seq_len)
        self.cached: list[int] = []  # tokens whose keys and values are in the cache

    def propose(
        self, tokens: Sequence[int], k: int, sampling: SamplingConfig, generator: torch.Generator | None
    ) -> tuple[list[int], Tensor | None]:
        """k tokens drawn (or argmax) from the draft model, and their distributions (k, V)."""
        context = list(tokens)
        k = min(k, self.model.config.max_seq_len - len(context))
        common = 0
        for a, b in zip(self.cached, context[:-1], strict=False):  # keep the agreed prefix, drop rejected drafts
            if a != b:
                break
            common += 1
        self.cache.truncate(common)
        feed, drafts, dists = context[common:], [], []
        for _ in range(k):
            logits = self.model(torch.tensor([feed]), cache=self.cache, last_only=True)[0, -1]
            self.cached = context + drafts
            dist = _distribution(logits[None], sampling)[0]  # (V,)
            token = int(dist.argmax()) if sampling.greedy else int(torch.multinomial(dist, 1, generator=generator))
            drafts.append(token)
            dists.append(dist)
            feed = [token]
        return drafts, (torch.stack(dists) if dists else None)


def _distribution(logits: Tensor, sampling: SamplingConfig) -> Tensor:
    """Next-token probabilities (N, V) after temperature / top-k / top-p; one-hot argmax when greedy."""
    if sampling.greedy:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    return torch.softmax(filter_logits(logits, sampling), dim=-1)


def verify(p: Tensor, q: Tensor | None, drafts: Sequence[int], generator: torch.Generator | None) -> list[int]:
    """The rejection rule: target distributions p (k+1, V), draft distributions q (k, V) (None: point masses).

    Returns the accepted drafts and one more token, which together are distributed as the target's tokens.
    With one-hot p (greedy) this accepts exactly the drafts equal to the argmax and appends the argmax.
    """
    out = []
    for i, token in enumerate(drafts):
        q_token = 1.0 if q is None else float(q[i, token])
        ratio = float(p[i, token]) / q_token if q_token > 0 else 0.0
        if ratio >= 1.0 or float(torch.rand((), generator=generator)) < ratio:
            out.append(token)
            continue
        if q is None:
            residual = p[i].clone()
            residual[token] = 0.0  # max(0, p - onehot) off the drafted token
        else:
            residual = (p[i] - q[i]).clamp(min=0)
        out.append(int(torch.multinomial(residual / residual.sum(), 1, generator=generator)))
        return out
    out.append(int(torch.multinomial(p[len(drafts)], 1, generator=generator)))
    return out


@dataclass(frozen=True)
class SpeculativeResult:
    """New tokens and text, how many drafts were proposed and accepted, target forwards and wall time."""

    text: str
    token_ids: list[int]
    drafted: int
    accepted: int
    target_forwards: int
    seconds: float

    @property
    def acceptance(self) -> float:
        """Accepted drafts / proposed drafts."""
        return self.accepted / self.drafted if self.drafted else 0.0


@torch.inference_mode()
def speculative_generate(
    model: nn.Module,
    tokenizer: Tokenizer,
    prompt: str | Sequence[int],
    drafter: Drafter,
    *,
    k: int = 4,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    ignore_eos: bool = False,
) -> SpeculativeResult:
    """Generate like :func:`~tfdojo.infer.generate.generate` (one prompt), verifying k drafts per target forward."""
    start = time.perf_counter()
    if k < 1:
        raise ConfigError(f"k (drafted tokens per step) must be at least 1, got {k}")
    sampling = SamplingConfig(temperature, top_k, top_p)
    ids = tokenizer.encode(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
    _check_request(model, [ids], max_new_tokens)
    eos = set() if ignore_eos else set(tokenizer.eos_token_ids)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    cache = StaticKVCache.for_model(model, 1, len(ids) + max_new_tokens + k + 1)

    logits = model(torch.tensor([ids]), cache=cache, last_only=True)[:, -1]  # (1, V)
    new = [verify(_distribution(logits, sampling), None, [], generator)[0]]
    drafted = accepted = 0
    forwards = 1
    while new[-1] not in eos and len(new) < max_new_tokens:
        context = ids + new
        room = max_new_tokens - len(new)
        drafts, q = drafter.propose(context, min(k, room - 1), sampling, generator) if room > 1 else ([], None)
        before = cache.length  # = len(context) - 1: the newest token is not in the cache yet
        logits = model(torch.tensor([[new[-1], *drafts]]), cache=cache)[0]  # (1 + d, V)
        forwards += 1
        emitted = verify(_distribution(logits, sampling), q, drafts, generator)
        drafted, accepted = drafted + len(drafts), accepted + len(emitted) - 1
        cache.truncate(before + len(emitted))  # keep x and the accepted drafts; the bonus token comes next round
        for token in emitted:
            new.append(token)
            if token in eos or len(new) == max_new_tokens:
                break
    if new[-1] in eos:
        new.pop()
    text = tokenizer.decode(new)
    return SpeculativeResult(text, new, drafted, accepted, forwards, time.perf_counter() - start)
