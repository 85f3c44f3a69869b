"""GGUF metadata as a plain dict: key -> Python value (str, int, float, bool, or a list of them)."""

from __future__ import annotations

from typing import Any

import gguf

from tfdojo.weights.gguf_reader import GGUFFile


def gguf_metadata(reader: GGUFFile | gguf.GGUFReader) -> dict[str, Any]:
    """Every key/value field of an opened GGUF file (ours or the `gguf` package's reader), as Python values."""
    if isinstance(reader, GGUFFile):
        return dict(reader.metadata)
    return {key: field.contents() for key, field in reader.fields.items()}
