"""Tokenizers for training: characters, or a byte-level BPE trained on the training plays with ``tokenizers``.

Both reserve one id for the end of a document (``eos_id``), which packing puts after every document so that the
model learns where texts end and never predicts across the boundary.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from tfdojo.errors import TokenizerError

EOS = "<|endoftext|>"


class TrainTokenizer(Protocol):
    """What training needs of a tokenizer."""

    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def to_json(self) -> str: ...


@dataclass(frozen=True)
class CharTokenizer:
    """One id per character seen in training (sorted, so the vocabulary is deterministic) plus the end token."""

    chars: str

    @classmethod
    def fit(cls, texts: Sequence[str]) -> CharTokenizer:
        return cls("".join(sorted(set().union(*map(set, texts)))))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    @property
    def eos_id(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        index = {c: i for i, c in enumerate(self.chars)}
        try:
            return [index[c] for c in text]
        except KeyError as e:
            raise TokenizerError(
                f"character {e.args[0]!r} was not in the training text of this char tokenizer"
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] if i < len(self.chars) else "\n" for i in ids)

    def to_json(self) -> str:
        return json.dumps({"kind": "char", "chars": self.chars})


@dataclass(frozen=True)
class BpeTokenizer:
    """Byte-level BPE (Sennrich et al., 2016; GPT-2's byte-level variant) trained with HF ``tokenizers``."""

    tokenizer: Tokenizer

    @classmethod
    def fit(cls, texts: Sequence[str], vocab_size: int) -> BpeTokenizer:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[EOS],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    @property
    def eos_id(self) -> int:
        return self.tokenizer.token_to_id(EOS)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def to_json(self) -> str:
        return json.dumps({"kind": "bpe", "tokenizer": json.loads(self.tokenizer.to_str())})


def tokenizer_from_json(text: str) -> TrainTokenizer:
    """The tokenizer saved beside a checkpoint."""
    try:
        data = json.loads(text)
        if data["kind"] == "char":
            return CharTokenizer(data["chars"])
        if data["kind"] == "bpe":
            return BpeTokenizer(Tokenizer.from_str(json.dumps(data["tokenizer"])))
    except Exception as e:  # json errors, missing keys, and tokenizers' own plain Exception
        raise TokenizerError(
            f"the saved training tokenizer is damaged ({e}); retrain or restore tokenizer.json"
        ) from None
    raise TokenizerError(f"unknown saved tokenizer kind {data.get('kind')!r}")
