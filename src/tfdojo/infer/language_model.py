"""LanguageModel: what ``tfdojo.load`` returns for a decoder — config, module and tokenizer, ready to generate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from tfdojo.errors import TokenizerError
from tfdojo.infer.fast_llama import fast_decoder
from tfdojo.infer.generate import Generation, Prompt, Tokenizer, generate


@dataclass
class LanguageModel:
    """A decoder-only model with its tokenizer; ``generate`` and ``chat`` return only the new text.

    ``model`` is the readable eager module; generation runs through ``decoder``, an inference-time re-layout of
    the same weights (``tfdojo.infer.fast_llama``) where one exists, with the same logits.
    """

    config: Any
    model: nn.Module
    tokenizer: Tokenizer
    decoder: nn.Module | None = field(default=None, repr=False)  # None: built from ``model`` (FastLlama or itself)

    def __post_init__(self) -> None:
        if self.decoder is None:
            self.decoder = fast_decoder(self.model)

    def generate(self, prompt_or_ids: Prompt | Sequence[Prompt], **kwargs: Any) -> Generation | list[Generation]:
        """Continue a prompt; keyword arguments as in :func:`tfdojo.infer.generate.generate`."""
        return generate(self.decoder, self.tokenizer, prompt_or_ids, **kwargs)

    def chat(self, messages: Sequence[dict[str, str]], **kwargs: Any) -> Generation:
        """Answer a conversation [{"role": ..., "content": ...}, ...] through the model's chat template."""
        apply = getattr(self.tokenizer, "apply_chat_template", None)
        if apply is None:
            raise TokenizerError(
                f"{type(self.tokenizer).__name__} has no chat template; use generate() with a plain prompt"
            )
        return generate(self.decoder, self.tokenizer, apply(list(messages), add_generation_prompt=True), **kwargs)
