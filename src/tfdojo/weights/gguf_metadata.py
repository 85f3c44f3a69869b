"""GGUF metadata as a plain dict: key -> Python value (str, int, float, bool, or a list of them)."""

from __future__ import annotations

from typing import Any

import gguf


def gguf_metadata(reader: gguf.GGUFReader) -> dict[str, Any]:
    """Every key/value field of an opened GGUF file, decoded to Python values."""
    return {key: field.contents() for key, field in reader.fields.items()}
