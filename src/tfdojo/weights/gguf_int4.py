"""GGUF Q4_1 / Q4_0 tensors as int4 codes (``tfdojo.infer.quant.Int4Codes``) without requantizing.

A Q4_1 block holds 32 consecutive values of one row: fp16 scale d, fp16 minimum m, then 16 bytes whose low
nibbles are values 0-15 and high nibbles values 16-31, and stands for w = d · q + m. A Q4_0 block (fp16 d, 16
bytes) stands for w = d · (q - 8). In the kernels' form w = (q - 8) · s + z these are

    Q4_1:  s = d,  z = m + 8d            Q4_0:  s = d,  z = 0

with the same 4-bit codes, so the int4 model computes with exactly the weights the file holds (up to the bf16
rounding of s and z that the kernel needs).
"""

from __future__ import annotations

from collections.abc import Mapping

import gguf
import torch
from torch import Tensor

from tfdojo.infer.quant import INT4_MIDPOINT, Int4Codes
from tfdojo.models.llama import LlamaConfig
from tfdojo.weights.gguf import torch_shape, unpermute_rope_rows
from tfdojo.weights.gguf_llama import llama_tensor_names
from tfdojo.weights.gguf_reader import GGUFFile, GGUFTensor

Q4 = gguf.GGMLQuantizationType
BLOCK = 32  # values per Q4_0 / Q4_1 block


def _nibbles(packed: Tensor) -> Tensor:
    """(n, 16) bytes -> (n, 32) codes: the low nibbles are values 0-15, the high nibbles 16-31."""
    return torch.cat((packed & 0x0F, packed >> 4), dim=1)


def int4_codes(tensor: GGUFTensor) -> Int4Codes | None:
    """The tensor's own int4 codes (group 32) when it is Q4_1 or Q4_0, else None (quantize its floats instead)."""
    kind = tensor.tensor_type
    if kind not in (Q4.Q4_1, Q4.Q4_0):
        return None
    out, cols = torch_shape(tensor)
    blocks = torch.from_numpy(tensor.data).reshape(-1, gguf.GGML_QUANT_SIZES[kind][1])  # (n_blocks, bytes)
    scale = blocks[:, 0:2].contiguous().view(torch.float16).float()  # (n_blocks, 1)
    if kind == Q4.Q4_1:
        minimum = blocks[:, 2:4].contiguous().view(torch.float16).float()
        zero, codes = minimum + INT4_MIDPOINT * scale, _nibbles(blocks[:, 4:])
    else:
        zero, codes = torch.zeros_like(scale), _nibbles(blocks[:, 2:])
    groups = cols // BLOCK
    return Int4Codes(codes.reshape(out, cols), scale.reshape(out, groups), zero.reshape(out, groups), BLOCK)


def llama_int4_codes(tensors: Mapping[str, GGUFTensor], names: Mapping[str, str], heads: Mapping[str, int]) -> dict:
    """Our parameter name -> Int4Codes for every Q4_1 / Q4_0 matrix, rows in our order.

    ``names`` maps GGUF tensor names to ours (``tfdojo.weights.gguf_llama.llama_tensor_names``); ``heads`` maps
    the suffixes of W_q and W_k to their head counts, whose rows llama.cpp's converter interleaved.
    """
    out: dict[str, Int4Codes] = {}
    for theirs, ours in names.items():
        codes = int4_codes(tensors[theirs])
        if codes is None:
            continue
        n_heads = heads.get(theirs.split(".", 2)[-1])
        if n_heads:
            order = unpermute_rope_rows(torch.arange(codes.codes.shape[0])[:, None], n_heads)[:, 0]  # (out,)
            codes = codes.rows(order)
        out[ours] = codes
    return out


def gguf_llama_int4_codes(reader: GGUFFile, config: LlamaConfig) -> dict[str, Int4Codes]:
    """The int4 codes of every Q4_1 / Q4_0 matrix of a Llama GGUF file, by our parameter name."""
    heads = {"attn_q.weight": config.n_heads, "attn_k.weight": config.n_kv_heads}
    tensors = {t.name: t for t in reader.tensors}
    return llama_int4_codes(tensors, llama_tensor_names(config), heads)
