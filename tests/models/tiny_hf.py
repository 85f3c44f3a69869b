"""Tiny random Hugging Face models for parity tests: small shapes, every weight moved off its initial value."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# A 2-layer decoder with 4 query heads sharing 2 key/value heads (Mistral, Qwen2, Mixtral accept these fields).
DECODER_FIELDS: dict[str, Any] = dict(
    vocab_size=80,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
)


def perturbed(model: nn.Module, scale: float = 0.1, seed: int = 0) -> nn.Module:
    """``model`` in eval mode with N(0, scale²) added to every parameter, so that no norm is 1 and no bias is 0."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return model.eval()


def tiny_hf_decoder(model_cls: type[nn.Module], config_cls: type, **overrides: Any) -> nn.Module:
    """``model_cls(config_cls(DECODER_FIELDS | overrides))``, perturbed."""
    torch.manual_seed(0)
    return perturbed(model_cls(config_cls(**(DECODER_FIELDS | overrides))))
