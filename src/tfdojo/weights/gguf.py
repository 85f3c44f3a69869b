"""Reading GGUF files (llama.cpp's format) into torch tensors: open with checks, dequantize, undo the Q/K permutation.

A GGUF file is a header of key/value metadata, a table of tensor descriptions, then the tensor data, each tensor
in one of ggml's types: plain (F32, F16, BF16) or block-quantized (Q8_0, Q4_0, Q4_1, the K-quants, …). The
`gguf` package parses the file and dequantizes every type it knows; this module adds the checks and the layout
changes that turn ggml tensors into the weights our modules expect.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import gguf
import numpy as np
import torch
from rich.console import Console
from rich.progress import track
from torch import Tensor

from tfdojo.errors import CheckpointError

REINSTALL_HINT = "re-install the package that provides it, or download the file again"


def open_gguf(path: str | Path) -> gguf.GGUFReader:
    """Memory-map a GGUF file; a missing, truncated or corrupt file raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"GGUF file {path} does not exist; check the path")
    try:
        return gguf.GGUFReader(path)
    except (ValueError, IndexError, OverflowError, OSError, struct.error) as e:
        raise CheckpointError(
            f"{path} is not a readable GGUF file, it is truncated or corrupt ({e}); {REINSTALL_HINT}"
        ) from e


def torch_shape(tensor: gguf.ReaderTensor) -> tuple[int, ...]:
    """ggml lists dimensions fastest-varying first, torch slowest first: ggml [576, 49152] is torch (49152, 576)."""
    return tuple(int(d) for d in reversed(tensor.shape))


def dequantize(tensor: gguf.ReaderTensor) -> Tensor:
    """One tensor as fp32 in torch layout (a matrix is (out_features, in_features))."""
    try:
        values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError as e:
        raise CheckpointError(
            f"tensor {tensor.name} has ggml type {tensor.tensor_type.name}, which the installed gguf package cannot "
            f"dequantize; upgrade gguf or use a file quantized as Q8_0/Q4_K/Q6_K/F16"
        ) from e
    if not values.flags.writeable:  # F32 data comes back as a read-only view of the memory map
        values = values.copy()
    return torch.from_numpy(values.astype(np.float32, copy=False)).reshape(torch_shape(tensor))


def unpermute_rope_rows(weight: Tensor, n_heads: int) -> Tensor:
    """Undo the row order llama.cpp's convert_hf_to_gguf.py gives W_q and W_k.

    llama.cpp rotates adjacent channel pairs (2i, 2i+1); HF and tfdojo rotate (i, i + D/2) ("rotate half").
    The converter reorders each head's rows so that row 2i+j of the file is row j·D/2 + i of the original:

        file rows per head:     q0 q(D/2) q1 q(D/2+1) …      (H, D/2, 2, in)
        original rows per head: q0 q1 … q(D/2-1) q(D/2) …    (H, 2, D/2, in)
    """
    out_features, in_features = weight.shape
    head_dim = out_features // n_heads
    pairs = weight.reshape(n_heads, head_dim // 2, 2, in_features)  # (H, D/2, 2, in)
    return pairs.transpose(1, 2).reshape(out_features, in_features)  # (H, 2, D/2, in) -> (H·D, in)


def iter_dequantized(tensors: Iterable[gguf.ReaderTensor], *, label: str) -> Iterator[tuple[str, Tensor]]:
    """(name, fp32 tensor) for each tensor, with a progress bar on stderr when it is a terminal."""
    tensors = list(tensors)
    visible = sys.stderr.isatty()
    for tensor in track(tensors, description=label, disable=not visible, console=Console(stderr=True)):
        yield tensor.name, dequantize(tensor)
