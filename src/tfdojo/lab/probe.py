"""Looking inside the bundled SmolLM2: held-out text, the residual stream after every block, attention maps.

The residual stream is read with forward hooks on the blocks; attention probabilities are recomputed from each
attention module's own input with the eager formula softmax(QKᵀ/√d + causal mask), so the model's fast path is
left untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor, nn

from tfdojo.nn.rope import apply_rope

SMOLLM = "smollm2-135m-instruct"


@lru_cache(maxsize=1)
def smollm() -> Any:
    """The bundled SmolLM2 (fp32), loaded once per process and shared by the experiments."""
    import tfdojo

    lm = tfdojo.load(SMOLLM)
    lm.model.eval()
    return lm


@lru_cache(maxsize=1)
def bank_text() -> str:
    """Held-out English prose: the explanations of the question bank, in file order (not SmolLM2's training set)."""
    from tfdojo.practice.loader import load_bank

    return "\n\n".join(q.explanation.strip() for q in load_bank())


def text_ids(tokenizer: Any, n_tokens: int, offset: int = 0) -> Tensor:
    """(1, n_tokens) token ids of the bank text, starting ``offset`` tokens in."""
    ids = tokenizer.encode(bank_text())[offset : offset + n_tokens]
    return torch.tensor([ids])


@torch.no_grad()
def residual_stream(model: nn.Module, input_ids: Tensor) -> tuple[list[Tensor], Tensor]:
    """The stream after the embedding and after each block, [(B, T, dim)] * (L + 1), and the final logits."""
    states: list[Tensor] = []
    hooks = [model.embed.register_forward_hook(lambda _m, _i, out: states.append(out.detach()))]
    hooks += [layer.register_forward_hook(lambda _m, _i, out: states.append(out.detach())) for layer in model.layers]
    try:
        logits = model(input_ids)
    finally:
        for h in hooks:
            h.remove()
    return states, logits


@torch.no_grad()
def attention_maps(model: nn.Module, input_ids: Tensor) -> Tensor:
    """Causal attention probabilities of every layer and query head: (L, B, Hq, T, T)."""
    maps: list[Tensor] = []

    def capture(attn: nn.Module, args: tuple, kwargs: dict) -> None:
        (x,) = args
        b, t, _ = x.shape
        q = attn.q_proj(x).view(b, t, attn.n_heads, attn.head_dim).transpose(1, 2)  # (B, Hq, T, D)
        k = attn.k_proj(x).view(b, t, attn.n_kv_heads, attn.head_dim).transpose(1, 2)  # (B, Hkv, T, D)
        q, k = apply_rope(q, *kwargs["rope"]), apply_rope(k, *kwargs["rope"])
        k = k.repeat_interleave(attn.n_heads // attn.n_kv_heads, dim=1)  # (B, Hq, T, D): each group shares a head
        scores = q @ k.transpose(-2, -1) / math.sqrt(attn.head_dim)  # (B, Hq, T, T)
        future = torch.ones(t, t, dtype=torch.bool).triu(1)
        maps.append(scores.masked_fill(future, float("-inf")).softmax(-1))

    hooks = [layer.attn.register_forward_pre_hook(capture, with_kwargs=True) for layer in model.layers]
    try:
        model(input_ids)
    finally:
        for h in hooks:
            h.remove()
    return torch.stack(maps)


def next_token_loss(logits: Tensor, input_ids: Tensor) -> Tensor:
    """Per-position cross-entropy of predicting token t+1 from position t: (B, T-1)."""
    return nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), input_ids[:, 1:], reduction="none")


@lru_cache(maxsize=2)
def text_stream(n_tokens: int) -> tuple[Tensor, list[Tensor], Tensor]:
    """SmolLM2 on the first ``n_tokens`` of the bank text: ids (1, T), the residual stream, logits (cached)."""
    lm = smollm()
    ids = text_ids(lm.tokenizer, n_tokens)
    states, logits = residual_stream(lm.model, ids)
    return ids, states, logits


@contextmanager
def ablated_heads(model: nn.Module, heads: list[tuple[int, int]]) -> Iterator[None]:
    """Zero the outputs of the given (layer, head) pairs before each layer's output projection."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def zero(chosen: list[int], n_heads: int) -> Callable[[nn.Module, tuple[Tensor]], tuple[Tensor]]:
        def hook(_proj: nn.Module, args: tuple[Tensor]) -> tuple[Tensor]:
            (y,) = args  # (B, T, Hq·D)
            attn_heads = y.view(*y.shape[:2], n_heads, -1)  # (B, T, Hq, D)
            keep = torch.ones(n_heads, 1, dtype=y.dtype)
            keep[chosen] = 0
            return ((attn_heads * keep).flatten(2),)

        return hook

    hooks = []
    for layer, chosen in by_layer.items():
        attn = model.layers[layer].attn
        hooks.append(attn.o_proj.register_forward_pre_hook(zero(chosen, attn.n_heads)))
    try:
        yield
    finally:
        for h in hooks:
            h.remove()
