"""Tokenizers built with the `tokenizers` library from GGUF metadata or tokenizer.json; chat templates."""
