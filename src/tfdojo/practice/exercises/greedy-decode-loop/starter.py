"""Greedy decoding with a key/value cache over a one-layer model given as callables."""

from typing import Any

from torch import Tensor


def forward_logits(model: Any, ids: Tensor) -> Tensor:
    """ids (B, T) -> logits (B, T, V): project, causal softmax attention, readout; no cache."""
    raise NotImplementedError


def greedy_decode(model: Any, prompt: Tensor, max_new_tokens: int, eos_id: int | None = None) -> Tensor:
    """prompt (B, T0) -> new tokens (B, m): prefill once, then one cached step per token, argmax each time."""
    raise NotImplementedError
