"""Reading GGUF files (llama.cpp's format) into torch tensors: open with checks, dequantize, undo the Q/K permutation.

A GGUF file is a header of key/value metadata, a table of tensor descriptions, then the tensor data, each tensor
in one of ggml's types: plain (F32, F16, BF16) or block-quantized (Q8_0, Q4_0, Q4_1, the K-quants, …).
``tfdojo.weights.gguf_reader`` parses the file; Q8_0 and Q4_1 (what the bundled SmolLM2 uses) are dequantized
here with whole-tensor torch operations, every other type by the `gguf` package's numpy code. This module adds
the checks and the layout changes that turn ggml tensors into the weights our modules expect.
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
from tfdojo.weights.gguf_reader import GGUFFile, GGUFTensor

REINSTALL_HINT = "re-install the package that provides it, or download the file again"


def open_gguf(path: str | Path) -> GGUFFile:
    """Memory-map a GGUF file; a missing, truncated or corrupt file raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"GGUF file {path} does not exist; check the path")
    try:
        return GGUFFile(path)
    except (ValueError, IndexError, OverflowError, OSError, struct.error) as e:
        raise CheckpointError(
            f"{path} is not a readable GGUF file, it is truncated or corrupt ({e}); {REINSTALL_HINT}"
        ) from e


def torch_shape(tensor: GGUFTensor) -> tuple[int, ...]:
    """ggml lists dimensions fastest-varying first, torch slowest first: ggml [576, 49152] is torch (49152, 576)."""
    return tuple(int(d) for d in reversed(tensor.shape))


def _dequantize_q8_0(blocks: Tensor) -> Tensor:
    """Q8_0 blocks (n, 34): an fp16 scale d, then 32 int8 q; value = q · d (in fp32, as ggml and `gguf` do)."""
    scale = blocks[:, :2].contiguous().view(torch.float16).float()  # (n, 1)
    return blocks[:, 2:].view(torch.int8).float().mul_(scale)  # (n, 32)


def _dequantize_q4_1(blocks: Tensor) -> Tensor:
    """Q4_1 blocks (n, 20): fp16 scale d and minimum m, then 16 bytes whose low nibbles are values 0-15 and
    high nibbles values 16-31; value = d · q + m (fp32, two roundings like `gguf`'s numpy, no fused multiply-add)."""
    scale = blocks[:, 0:2].contiguous().view(torch.float16).float()  # (n, 1)
    minimum = blocks[:, 2:4].contiguous().view(torch.float16).float()  # (n, 1)
    packed = blocks[:, 4:]  # (n, 16)
    q = torch.cat((packed & 0x0F, packed >> 4), dim=1)  # (n, 32) uint8
    return q.float().mul_(scale).add_(minimum)


TORCH_DEQUANTIZERS = {
    gguf.GGMLQuantizationType.Q8_0: _dequantize_q8_0,
    gguf.GGMLQuantizationType.Q4_1: _dequantize_q4_1,
}


def dequantize(tensor: GGUFTensor) -> Tensor:
    """One tensor as fp32 in torch layout (a matrix is (out_features, in_features)), owning its memory."""
    kind = tensor.tensor_type
    if kind in TORCH_DEQUANTIZERS:
        blocks = torch.from_numpy(tensor.data).reshape(-1, gguf.GGML_QUANT_SIZES[kind][1])  # (n_blocks, bytes)
        return TORCH_DEQUANTIZERS[kind](blocks).reshape(torch_shape(tensor))
    try:
        values = gguf.quants.dequantize(tensor.data, kind)
    except NotImplementedError as e:
        raise CheckpointError(
            f"tensor {tensor.name} has ggml type {kind.name}, which the installed gguf package cannot "
            f"dequantize; upgrade gguf or use a file quantized as Q8_0/Q4_K/Q6_K/F16"
        ) from e
    return torch.from_numpy(np.array(values, dtype=np.float32)).reshape(torch_shape(tensor))  # F32: a copy of the map


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


def iter_dequantized(tensors: Iterable[GGUFTensor], *, label: str) -> Iterator[tuple[str, Tensor]]:
    """(name, fp32 tensor) for each tensor, with a progress bar on stderr when it is a terminal."""
    tensors = list(tensors)
    visible = sys.stderr.isatty()
    for tensor in track(tensors, description=label, disable=not visible, console=Console(stderr=True)):
        yield tensor.name, dequantize(tensor)
