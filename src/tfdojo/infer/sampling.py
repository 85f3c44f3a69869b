"""Choosing the next token from logits: greedy, temperature, top-k and nucleus (top-p) sampling.

Every function works on a whole batch of rows (B, V) at once; nothing loops over the vocabulary or the batch.
Top-k keeps the k largest logits (Fan et al., 2018, "Hierarchical Neural Story Generation"); top-p keeps the
smallest set of tokens whose probabilities sum to at least p (Holtzman et al., 2020, "The Curious Case of
Neural Text Degeneration"). Both run after the temperature, and top-k runs before top-p, as in HF transformers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.infer import gemv_kernel


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick tokens: temperature 0 is greedy (argmax); top_k / top_p of None switch that filter off."""

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (0 means greedy), got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be a positive number of tokens or None, got {self.top_k}")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must lie in (0, 1] or be None, got {self.top_p}")

    @property
    def greedy(self) -> bool:
        """True when the choice is deterministic argmax."""
        return self.temperature == 0.0


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Set every logit below the k-th largest of its row to -inf (ties with the k-th are kept)."""
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Keep the smallest prefix of tokens, by falling probability, whose mass reaches p; -inf the rest."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # (B, V): probability of the tokens ranked above each one
    drop_sorted = mass_before >= p  # the top token always has mass_before 0 < p, so every row keeps one
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def filter_logits(logits: Tensor, config: SamplingConfig) -> Tensor:
    """Temperature, then top-k, then top-p: the logits that :func:`sample` draws from."""
    logits = logits.float() / config.temperature
    if config.top_k is not None:
        logits = top_k_filter(logits, config.top_k)
    if config.top_p is not None and config.top_p < 1.0:
        logits = top_p_filter(logits, config.top_p)
    return logits


def greedy(logits: Tensor) -> Tensor:
    """Argmax per row (B, V) -> (B,). One CPU bf16 row (a batch-1 decode step) goes through our one-threaded C loop:
    torch's argmax of a vocabulary runs on its OpenMP threads, which then spin on the cores through the next native
    decode step (+2.9 ms a SmolLM2 token at two threads). Otherwise via fp32 (exact for bf16): torch's CPU argmax
    over bf16 took 530 µs for 49,152 logits, over fp32 52 µs."""
    if logits.shape[0] == 1 and logits.dtype == torch.bfloat16 and logits.device.type == "cpu":
        row = logits[0].contiguous()
        index = gemv_kernel.argmax_row(row)
        if index is not None:
            return torch.tensor([index])
    return logits.float().argmax(dim=-1)


def sample(logits: Tensor, config: SamplingConfig, generator: torch.Generator | None = None) -> Tensor:
    """Next token per row: logits (B, V) -> LongTensor (B,). Greedy ignores the generator."""
    if config.greedy:
        return greedy(logits)
    probs = torch.softmax(filter_logits(logits, config), dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)
