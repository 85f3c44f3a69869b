"""A decoder that runs batch-1 decode steps its own way and hands every other call to the decoder it wraps.

The compiled step (``compiled_decode``) and the native step (``native_step``) both take over only the one-token,
batch-1 steps they can run; prompts, batches, padding masks and anything they cannot handle go to the wrapped
FastLlama/QuantLlama, whose logits they match.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from tfdojo.infer.fast_llama import FastLlama
from tfdojo.nn.kv import KVCache


class StepWrapper(nn.Module):
    """Same forward as the wrapped decoder; :meth:`step` where :meth:`applies`, the wrapped decoder otherwise."""

    def __init__(self, decoder: FastLlama) -> None:
        super().__init__()
        self.decoder, self.config = decoder, decoder.config

    def applies(self, input_ids: Tensor, positions: Tensor | None, mask: Tensor | None, cache: Any) -> bool:
        """Whether :meth:`step` can run this call."""
        raise NotImplementedError

    def step(self, input_ids: Tensor, cache: Any) -> Tensor | None:
        """Logits (1, 1, V) of a call :meth:`applies` accepted, or None to let the wrapped decoder run it."""
        raise NotImplementedError

    @torch.inference_mode()
    def forward(
        self,
        input_ids: Tensor,
        *,
        positions: Tensor | None = None,
        attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> Tensor:
        """Logits as the wrapped decoder's (B, T, V), or (B, 1, V) with ``last_only``."""
        if self.applies(input_ids, positions, attention_mask, cache):
            logits = self.step(input_ids, cache)
            if logits is not None:
                return logits
        return self.decoder(
            input_ids, positions=positions, attention_mask=attention_mask, cache=cache, last_only=last_only
        )
