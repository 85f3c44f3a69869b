"""Mutant: ignores the padding mask, since the projected axis no longer lines up with positions."""

import math

import torch
from torch import Tensor


def linformer_attention(q, k, v, e, f, *, key_padding=None, scale=None) -> Tensor:
    """Padded keys leak into every projected key."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    k_proj = torch.einsum("ps,bhsd->bhpd", e, k)
    v_proj = torch.einsum("ps,bhsd->bhpd", f, v)
    return torch.softmax(q @ k_proj.transpose(-1, -2) * scale, dim=-1) @ v_proj
