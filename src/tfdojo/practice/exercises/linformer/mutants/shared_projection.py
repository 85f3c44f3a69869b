"""Mutant: projects the values with E as well (F is ignored)."""

import math

import torch
from torch import Tensor


def linformer_attention(q, k, v, e, f, *, key_padding=None, scale=None) -> Tensor:
    """Uses e for both keys and values."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if key_padding is not None:
        keep = key_padding[:, None, :, None].to(k.dtype)
        k, v = k * keep, v * keep
    k_proj = torch.einsum("ps,bhsd->bhpd", e, k)
    v_proj = torch.einsum("ps,bhsd->bhpd", e, v)
    return torch.softmax(q @ k_proj.transpose(-1, -2) * scale, dim=-1) @ v_proj
