"""A reader for CTranslate2's ``model.bin``: the variables of a converted model, as tensors, by name.

The layout (binary version 6, little-endian; strings are a uint16 length counting a trailing NUL, then the bytes):

    uint32 binary_version | string spec_name | uint32 spec_revision | uint32 n_variables
    n_variables × ( string name | uint8 rank | uint32 dims[rank] | uint8 dtype | uint32 n_bytes | bytes data )
    uint32 n_aliases × ( string alias | string target )          e.g. decoder/projection/weight -> the embedding

dtype ids follow CTranslate2's DataType enum: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16.
Rank-0 variables are the spec's settings (``encoder/num_heads``, ``decoder/pre_norm``, …). Versions 4 to 6 share
this layout (version 4 introduced the dtype byte, version 3 aliases); older files are refused.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tfdojo.errors import CheckpointError

SUPPORTED_VERSIONS = range(4, 7)
_DTYPES: dict[int, torch.dtype] = {
    0: torch.float32,
    1: torch.int8,
    2: torch.int16,
    3: torch.int32,
    4: torch.float16,
    5: torch.bfloat16,
}


@dataclass
class Ct2Model:
    """The contents of one model.bin: spec name and revision, the variables, and the aliases resolved to them."""

    path: Path
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, torch.Tensor] = field(default_factory=dict)

    def tensor(self, name: str) -> torch.Tensor:
        """The variable called ``name``; a missing one is a CheckpointError naming the file."""
        try:
            return self.variables[name]
        except KeyError:
            raise CheckpointError(
                f"{self.path} has no variable {name!r} (spec {self.spec} rev {self.revision})"
            ) from None

    def scalar(self, name: str) -> int:
        """A rank-0 setting such as ``encoder/num_heads``, as a Python int."""
        value = self.tensor(name)
        if value.numel() != 1:
            raise CheckpointError(f"{self.path}: {name!r} should be a single value, has shape {tuple(value.shape)}")
        return int(value.item())


class _Cursor:
    """Reads little-endian fields from a bytes buffer; running off the end is a CheckpointError (truncated file)."""

    def __init__(self, data: bytes | memoryview, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int) -> memoryview:
        end = self.pos + n
        if end > len(self.data):
            raise CheckpointError(
                f"{self.path} is truncated: needed {n} bytes at offset {self.pos}, the file has {len(self.data)}"
            )
        view = memoryview(self.data)[self.pos : end]
        self.pos = end
        return view

    def unpack(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("H")
        raw = bytes(self.take(n))
        if n == 0 or raw[-1] != 0:
            raise CheckpointError(f"{self.path} is corrupt: a string at offset {self.pos - n} is not NUL-terminated")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError(f"{self.path} is corrupt: a name at offset {self.pos - n} is not UTF-8") from None


def _variable(cur: _Cursor) -> tuple[str, torch.Tensor]:
    name = cur.string()
    rank = cur.unpack("B")
    shape = tuple(cur.unpack("I") for _ in range(rank))
    type_id = cur.unpack("B")
    n_bytes = cur.unpack("I")
    if type_id not in _DTYPES:
        raise CheckpointError(f"{cur.path}: variable {name!r} has unknown dtype id {type_id} (known: 0-5)")
    dtype = _DTYPES[type_id]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if n_bytes != expected:
        raise CheckpointError(
            f"{cur.path} is corrupt: {name!r} of shape {shape} and {dtype} should take {expected} bytes, "
            f"the file says {n_bytes}"
        )
    raw = bytearray(cur.take(n_bytes))  # a private, writable copy: torch tensors must not alias the file buffer
    return name, torch.frombuffer(raw, dtype=dtype).reshape(shape) if n_bytes else torch.empty(shape, dtype=dtype)


def read_ct2(path: str | Path) -> Ct2Model:
    """Parse ``model.bin`` at ``path``; truncated or malformed files raise CheckpointError saying where."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read CTranslate2 model {path}: {e.strerror or e}") from None
    cur = _Cursor(data, path)
    version = cur.unpack("I")
    if version not in SUPPORTED_VERSIONS:
        raise CheckpointError(
            f"{path} has CTranslate2 binary version {version}; tfdojo reads versions "
            f"{SUPPORTED_VERSIONS.start}-{SUPPORTED_VERSIONS.stop - 1} (re-convert it with a current ct2 converter)"
        )
    model = Ct2Model(path, version, cur.string(), cur.unpack("I"))
    for _ in range(cur.unpack("I")):
        name, tensor = _variable(cur)
        model.variables[name] = tensor
    for _ in range(cur.unpack("I")):
        alias, target = cur.string(), cur.string()
        if target not in model.variables:
            raise CheckpointError(f"{path} is corrupt: alias {alias!r} points to missing variable {target!r}")
        model.variables[alias] = model.variables[target]
    if cur.pos != len(data):
        raise CheckpointError(f"{path} is corrupt: {len(data) - cur.pos} unexpected bytes after the last alias")
    return model
