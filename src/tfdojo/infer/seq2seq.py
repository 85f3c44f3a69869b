"""Greedy decoding for encoder-decoder models (T5): encode the source once, then grow the target one token a step.

The decoder is re-run over the whole target each step (no cache): for the short outputs this is used for the cost
is small and the result is, by construction, the plain forward's argmax at every position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn


class EncoderDecoder(Protocol):
    """What greedy decoding needs from a model (``tfdojo.models.t5.T5`` has it)."""

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor: ...

    def decode(
        self, decoder_input_ids: Tensor, encoder_output: Tensor, attention_mask: Tensor | None = None
    ) -> Tensor: ...


@torch.no_grad()
def greedy_seq2seq(
    model: EncoderDecoder,
    input_ids: Tensor,
    *,
    max_new_tokens: int,
    decoder_start_token_id: int,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    attention_mask: Tensor | None = None,
) -> Tensor:
    """(B, S) source ids -> (B, 1 + n) target ids starting with the start token; after EOS a row gets padding.

    Stops early once every row has produced EOS, so n ≤ ``max_new_tokens`` (Hugging Face ``generate`` with
    ``do_sample=False`` returns the same layout).
    """
    memory = model.encode(input_ids, attention_mask)  # (B, S, dim)
    b = input_ids.shape[0]
    target = torch.full((b, 1), decoder_start_token_id, dtype=torch.long, device=input_ids.device)  # (B, 1)
    done = torch.zeros(b, dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        next_ids = model.decode(target, memory, attention_mask)[:, -1].argmax(-1)  # (B,)
        next_ids = next_ids.masked_fill(done, pad_token_id)
        target = torch.cat((target, next_ids.unsqueeze(1)), dim=1)  # (B, T + 1)
        if eos_token_id is not None:
            done = done | (next_ids == eos_token_id)
            if bool(done.all()):  # one host sync per step, to stop as soon as every row has finished
                break
    return target


@dataclass
class Seq2SeqLM:
    """An encoder-decoder with its config and tokenizer (None when the folder has none), as the loaders return it."""

    config: Any
    model: nn.Module
    tokenizer: Any = None

    def generate(self, input_ids: Tensor, *, max_new_tokens: int = 64, attention_mask: Tensor | None = None) -> Tensor:
        """Greedy target ids (B, 1 + n), starting with the decoder start token, using the config's special ids."""
        c = self.config
        return greedy_seq2seq(
            self.model,  # type: ignore[arg-type]  (T5 satisfies EncoderDecoder)
            input_ids,
            max_new_tokens=max_new_tokens,
            decoder_start_token_id=c.decoder_start_token_id,
            eos_token_id=c.eos_token_id,
            pad_token_id=c.pad_token_id,
            attention_mask=attention_mask,
        )
