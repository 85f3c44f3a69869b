"""A fast GGUF parser: the whole header in one pass over the memory map, every string array in one tight loop.

``gguf.GGUFReader`` builds a numpy view per value, which costs ~5 s for SmolLM2's 49,152-token vocabulary and
48,900 merges. This reader walks the same layout with ``struct`` over an ``mmap`` and decodes each value straight
to Python, and views each tensor's bytes with one ``np.frombuffer``. The layout (GGUF v2/v3, little-endian):

    "GGUF" | version u32 | n_tensors u64 | n_kv u64
    n_kv ×      key: string | value type u32 | value           string = length u64, UTF-8 bytes
                                                               array  = item type u32, count u64, items
    n_tensors × name: string | n_dims u32 | dims u64 × n_dims (fastest first) | ggml type u32 | offset u64
    padding to ``general.alignment`` (default 32) | tensor data (each tensor at data start + its offset)

``tests/weights/test_gguf_reader.py`` holds its values equal to ``gguf.GGUFReader``'s.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType, GGUFValueType
from gguf.quants import quant_shape_to_byte_shape

SUPPORTED_VERSIONS = (2, 3)

# Fixed-size value types: struct format (little-endian) for one value, numpy dtype for an array of them.
SCALARS: dict[GGUFValueType, tuple[struct.Struct, np.dtype]] = {
    GGUFValueType.UINT8: (struct.Struct("<B"), np.dtype("<u1")),
    GGUFValueType.INT8: (struct.Struct("<b"), np.dtype("<i1")),
    GGUFValueType.UINT16: (struct.Struct("<H"), np.dtype("<u2")),
    GGUFValueType.INT16: (struct.Struct("<h"), np.dtype("<i2")),
    GGUFValueType.UINT32: (struct.Struct("<I"), np.dtype("<u4")),
    GGUFValueType.INT32: (struct.Struct("<i"), np.dtype("<i4")),
    GGUFValueType.FLOAT32: (struct.Struct("<f"), np.dtype("<f4")),
    GGUFValueType.BOOL: (struct.Struct("<?"), np.dtype("?")),
    GGUFValueType.UINT64: (struct.Struct("<Q"), np.dtype("<u8")),
    GGUFValueType.INT64: (struct.Struct("<q"), np.dtype("<i8")),
    GGUFValueType.FLOAT64: (struct.Struct("<d"), np.dtype("<f8")),
}
U32, U64 = struct.Struct("<I"), struct.Struct("<Q")

# ggml types stored as plain numbers get a typed array; the others (block-quantized, BF16) stay bytes, one row
# of blocks per tensor row, as gguf.GGUFReader gives them (gguf.quants.dequantize expects that shape).
PLAIN_TYPES: dict[GGMLQuantizationType, np.dtype] = {
    GGMLQuantizationType.F32: np.dtype("<f4"),
    GGMLQuantizationType.F16: np.dtype("<f2"),
    GGMLQuantizationType.F64: np.dtype("<f8"),
    GGMLQuantizationType.I8: np.dtype("<i1"),
    GGMLQuantizationType.I16: np.dtype("<i2"),
    GGMLQuantizationType.I32: np.dtype("<i4"),
    GGMLQuantizationType.I64: np.dtype("<i8"),
}


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor's description and its bytes in the memory map (no copy).

    ``shape`` is ggml's order (fastest-varying first); ``data`` is a numpy view shaped in torch order, typed for
    plain ggml types and uint8 (rows, bytes per row) for block-quantized ones — the layout of ``gguf.ReaderTensor``.
    """

    name: str
    tensor_type: GGMLQuantizationType
    shape: tuple[int, ...]
    data: np.ndarray


class _Cursor:
    """Reads GGUF values from a buffer, advancing an offset; a read past the end raises ValueError."""

    def __init__(self, buffer: mmap.mmap, offset: int = 0) -> None:
        self.buffer, self.offset, self.size = buffer, offset, len(buffer)

    def fixed(self, layout: struct.Struct) -> Any:
        (value,) = layout.unpack_from(self.buffer, self.offset)  # struct.error past the end
        self.offset += layout.size
        return value

    def string(self) -> str:
        length = self.fixed(U64)
        end = self.offset + length
        if end > self.size:
            raise ValueError(f"a string of {length} bytes at offset {self.offset} runs past the end of the file")
        text = self.buffer[self.offset : end].decode("utf-8")
        self.offset = end
        return text

    def strings(self, count: int) -> list[str]:
        """``count`` strings back to back: the vocabulary and merges, so this loop is kept tight."""
        buffer, offset, unpack = self.buffer, self.offset, U64.unpack_from
        out = []
        for _ in range(count):
            (length,) = unpack(buffer, offset)
            offset += 8
            out.append(buffer[offset : offset + length].decode("utf-8"))
            offset += length
        if offset > self.size:
            raise ValueError(f"a string array at offset {self.offset} runs past the end of the file")
        self.offset = offset
        return out

    def array(self, dtype: np.dtype, count: int) -> np.ndarray:
        values = np.frombuffer(self.buffer, dtype=dtype, count=count, offset=self.offset)  # ValueError if short
        self.offset += values.nbytes
        return values

    def value(self, kind: int) -> Any:
        """One metadata value of GGUF type ``kind`` as Python (nested lists for arrays of arrays)."""
        kind = GGUFValueType(kind)  # ValueError for an unknown type
        if kind in SCALARS:
            return self.fixed(SCALARS[kind][0])
        if kind == GGUFValueType.STRING:
            return self.string()
        item_kind, count = GGUFValueType(self.fixed(U32)), self.fixed(U64)
        if item_kind in SCALARS:
            return self.array(SCALARS[item_kind][1], count).tolist()
        if item_kind == GGUFValueType.STRING:
            return self.strings(count)
        return [self.value(item_kind) for _ in range(count)]


class GGUFFile:
    """An opened GGUF file: ``metadata`` (key -> Python value) and ``tensors`` (views into the memory map).

    The map is copy-on-write: the arrays are writable (torch can wrap them without a copy) and the file on disk
    is never changed. Raises ValueError (or struct.error) when the bytes are not a well-formed GGUF file.
    """

    def __init__(self, path: str | Path) -> None:
        with open(path, "rb") as f:
            self.buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # ValueError for an empty file
        cursor = _Cursor(self.buffer)
        if self.buffer[:4] != b"GGUF":
            raise ValueError("the file does not start with the GGUF magic bytes")
        cursor.offset = 4
        version = cursor.fixed(U32)
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"GGUF version {version} (or a big-endian file); this reader handles versions 2 and 3")
        n_tensors, n_kv = cursor.fixed(U64), cursor.fixed(U64)
        # The three header numbers appear as fields in gguf.GGUFReader too; keeping them makes the two agree.
        self.metadata: dict[str, Any] = {"GGUF.version": version, "GGUF.tensor_count": n_tensors, "GGUF.kv_count": n_kv}
        for _ in range(n_kv):
            key = cursor.string()
            if key in self.metadata:
                raise ValueError(f"metadata key {key!r} appears twice")
            self.metadata[key] = cursor.value(cursor.fixed(U32))
        infos = [self._tensor_info(cursor) for _ in range(n_tensors)]
        alignment = self.metadata.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"general.alignment must be a power of two, got {alignment!r}")
        self.data_offset = -(-cursor.offset // alignment) * alignment  # round up to the alignment
        self.tensors = [self._tensor(*info) for info in infos]
        if len({t.name for t in self.tensors}) != len(self.tensors):
            raise ValueError("two tensors have the same name")

    @staticmethod
    def _tensor_info(cursor: _Cursor) -> tuple[str, tuple[int, ...], GGMLQuantizationType, int]:
        name = cursor.string()
        dims = tuple(cursor.array(np.dtype("<u8"), cursor.fixed(U32)).tolist())
        return name, dims, GGMLQuantizationType(cursor.fixed(U32)), cursor.fixed(U64)

    def _tensor(self, name: str, dims: tuple[int, ...], kind: GGMLQuantizationType, offset: int) -> GGUFTensor:
        torch_order = tuple(reversed(dims))
        n_elements = int(np.prod(dims, dtype=np.int64)) if dims else 1
        if kind in PLAIN_TYPES:
            dtype, count, shape = PLAIN_TYPES[kind], n_elements, torch_order
        else:
            block, block_bytes = GGML_QUANT_SIZES[kind]
            dtype, count = np.dtype(np.uint8), n_elements // block * block_bytes
            shape = quant_shape_to_byte_shape(torch_order, kind)
        start = self.data_offset + offset
        if start + count * dtype.itemsize > len(self.buffer):
            raise ValueError(f"tensor {name} ends past the end of the file (the file is cut short)")
        data = np.frombuffer(self.buffer, dtype=dtype, count=count, offset=start).reshape(shape)
        return GGUFTensor(name, kind, dims, data)
