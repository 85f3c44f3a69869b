"""Tokenizer: text <-> token ids through the `tokenizers` library, plus the model's special ids and chat template."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tokenizers

from tfdojo.errors import TokenizerError
from tfdojo.tokenize.chat import render_chat

_TURN_SENTINEL = "\x00tfdojo-turn-end\x00"


class Tokenizer:
    """A `tokenizers.Tokenizer` with the special ids and chat template a model needs for generation."""

    def __init__(
        self,
        backend: tokenizers.Tokenizer,
        *,
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        unk_token_id: int | None = None,
        chat_template: str | None = None,
    ) -> None:
        self.backend = backend
        self.bos_token_id, self.pad_token_id, self.unk_token_id = bos_token_id, pad_token_id, unk_token_id
        self.eos_token_id = eos_token_id
        self.chat_template = chat_template
        self.eos_token_ids: set[int] = {eos_token_id} if eos_token_id is not None else set()
        end_of_turn = self._end_of_turn_id()
        if end_of_turn is not None:
            self.eos_token_ids.add(end_of_turn)

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        """Load a tokenizer.json; special tokens and chat template come from tokenizer_config.json beside it."""
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        try:
            backend = tokenizers.Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises bare Exceptions for missing or malformed files
            raise TokenizerError(f"cannot read tokenizer file {path}: {e}. Point to a valid tokenizer.json.") from e
        file_pad_id = backend.padding["pad_id"] if backend.padding else None
        backend.no_padding()  # padding and truncation are the caller's choice, not the file's
        backend.no_truncation()
        config = _read_json(path.with_name("tokenizer_config.json"))
        template = _chat_template(config, path.with_name("chat_template.jinja"))

        def token_id(key: str) -> int | None:
            token = config.get(key)
            if isinstance(token, Mapping):
                token = token.get("content")
            return backend.token_to_id(token) if isinstance(token, str) else None

        pad_id = token_id("pad_token")
        return cls(
            backend,
            bos_token_id=token_id("bos_token"),
            eos_token_id=token_id("eos_token"),
            pad_token_id=pad_id if pad_id is not None else file_pad_id,
            unk_token_id=token_id("unk_token"),
            chat_template=template,
        )

    @classmethod
    def from_gguf(cls, reader_or_metadata: Any) -> Tokenizer:
        """Build the tokenizer a GGUF file describes (a `gguf.GGUFReader` or its metadata as a dict)."""
        from tfdojo.tokenize.gguf_vocab import tokenizer_from_gguf_metadata
        from tfdojo.weights.gguf_metadata import gguf_metadata

        metadata = reader_or_metadata if isinstance(reader_or_metadata, Mapping) else gguf_metadata(reader_or_metadata)
        backend = tokenizer_from_gguf_metadata(metadata)

        def meta_id(key: str) -> int | None:
            value = metadata.get(f"tokenizer.ggml.{key}")
            return int(value) if value is not None else None

        return cls(
            backend,
            bos_token_id=meta_id("bos_token_id"),
            eos_token_id=meta_id("eos_token_id"),
            pad_token_id=meta_id("padding_token_id"),
            unk_token_id=meta_id("unknown_token_id"),
            chat_template=metadata.get("tokenizer.chat_template"),
        )

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    @property
    def special_token_ids(self) -> set[int]:
        """Ids of the added tokens marked special (dropped by ``decode(skip_special_tokens=True)``)."""
        return {i for i, tok in self.backend.get_added_tokens_decoder().items() if tok.special}

    def encode(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """Token ids for ``text``; special tokens written in the text (e.g. <|im_start|>) map to their ids."""
        return self.backend.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        """The text for ``ids`` (a list, or a 1-D tensor)."""
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def token(self, token_id: int) -> str | None:
        """The spelling of one id, as stored in the vocabulary."""
        return self.backend.id_to_token(token_id)

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True) -> str:
        """The prompt string for a conversation, laid out by the model's own chat template."""
        if self.chat_template is None:
            raise TokenizerError(
                "this model has no chat template; pass a plain prompt instead, or load a model that ships one"
            )
        return render_chat(
            self.chat_template, messages, add_generation_prompt=add_generation_prompt, **self._template_tokens()
        )

    def _template_tokens(self) -> dict[str, str | None]:
        """bos_token/eos_token/pad_token/unk_token strings, which templates may refer to."""
        ids = {"bos": self.bos_token_id, "eos": self.eos_token_id, "pad": self.pad_token_id, "unk": self.unk_token_id}
        return {f"{name}_token": (self.token(i) if i is not None else None) for name, i in ids.items()}

    def _end_of_turn_id(self) -> int | None:
        """The special token the template writes right after an assistant message: generation stops there too."""
        if self.chat_template is None:
            return None
        conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _TURN_SENTINEL}]
        try:
            text = self.apply_chat_template(conversation, add_generation_prompt=False)
        except TokenizerError:
            return None  # a template that refuses this minimal conversation tells us nothing
        _, found, after = text.partition(_TURN_SENTINEL)
        ids = self.encode(after) if found and after else []
        return ids[0] if ids and ids[0] in self.special_token_ids else None


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or {} if the file is absent."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TokenizerError(f"{path} is not valid JSON: {e}. Restore the file from the model's release.") from e


def _chat_template(config: Mapping[str, Any], jinja_path: Path) -> str | None:
    """The default chat template from tokenizer_config.json, or from chat_template.jinja beside it."""
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": "..."}, ...]
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    if template is None and jinja_path.is_file():
        template = jinja_path.read_text(encoding="utf-8")
    return template
