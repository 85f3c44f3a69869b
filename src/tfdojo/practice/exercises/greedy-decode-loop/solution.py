"""Greedy decoding with a key/value cache over a one-layer model given as callables."""

import math
from typing import Any

import torch
from torch import Tensor


def _attend(q: Tensor, k: Tensor, v: Tensor, causal: bool) -> Tensor:
    """(B, H, n, Dh) queries over (B, H, S, Dh) keys; causal aligns the queries to the end of the keys."""
    n, s = q.shape[2], k.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, H, n, S)
    if causal and n > 1:
        keep = torch.arange(s, device=q.device) <= torch.arange(s - n, s, device=q.device)[:, None]  # (n, S)
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def forward_logits(model: Any, ids: Tensor) -> Tensor:
    """ids (B, T) -> logits (B, T, V): project, causal softmax attention, readout; no cache."""
    positions = torch.arange(ids.shape[1], device=ids.device)
    q, k, v = model.project(ids, positions)
    return model.readout(_attend(q, k, v, causal=True), ids, positions)


def greedy_decode(model: Any, prompt: Tensor, max_new_tokens: int, eos_id: int | None = None) -> Tensor:
    """prompt (B, T0) -> new tokens (B, m): prefill once, then one cached step per token, argmax each time."""
    b, t0 = prompt.shape
    positions = torch.arange(t0, device=prompt.device)
    q, k_cache, v_cache = model.project(prompt, positions)  # prefill fills the cache
    logits = model.readout(_attend(q, k_cache, v_cache, causal=True), prompt, positions)[:, -1]  # (B, V)
    finished = torch.zeros(b, dtype=torch.bool, device=prompt.device)
    new_tokens = []
    for step in range(max_new_tokens):
        token = logits.argmax(-1)  # (B,)
        if eos_id is not None:
            token = torch.where(finished, torch.full_like(token, eos_id), token)
            finished |= token == eos_id
        new_tokens.append(token)
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        ids = token[:, None]  # (B, 1)
        position = torch.tensor([t0 + step], device=prompt.device)  # absolute position of the new token
        q, k, v = model.project(ids, position)
        k_cache = torch.cat((k_cache, k), dim=2)  # (B, H, S + 1, Dh)
        v_cache = torch.cat((v_cache, v), dim=2)
        logits = model.readout(_attend(q, k_cache, v_cache, causal=False), ids, position)[:, -1]
    return torch.stack(new_tokens, dim=1)  # (B, m)
