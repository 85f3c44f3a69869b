"""Tokenizers built with the `tokenizers` library from GGUF metadata or tokenizer.json; chat templates."""

from tfdojo.tokenize.tokenizer import Tokenizer

__all__ = ["Tokenizer"]
