"""Mutant: recomputes the whole sequence every step; the tokens are right but the cost is quadratic."""

from typing import Any

import torch
from torch import Tensor


def forward_logits(model: Any, ids: Tensor) -> Tensor:
    """Correct full forward."""
    positions = torch.arange(ids.shape[1])
    q, k, v = model.project(ids, positions)
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    keep = torch.ones(ids.shape[1], ids.shape[1], dtype=torch.bool).tril()
    attn = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1) @ v
    return model.readout(attn, ids, positions)


def greedy_decode(model: Any, prompt: Tensor, max_new_tokens: int, eos_id: int | None = None) -> Tensor:
    """No cache: forward_logits over everything each step."""
    ids = prompt
    finished = torch.zeros(prompt.shape[0], dtype=torch.bool)
    new_tokens = []
    for _ in range(max_new_tokens):
        token = forward_logits(model, ids)[:, -1].argmax(-1)
        if eos_id is not None:
            token = torch.where(finished, torch.full_like(token, eos_id), token)
            finished |= token == eos_id
        new_tokens.append(token)
        if eos_id is not None and bool(finished.all()):
            break
        ids = torch.cat((ids, token[:, None]), dim=1)
    return torch.stack(new_tokens, dim=1)
