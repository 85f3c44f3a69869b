"""Mutant: scales the scores by 1/√P (the projected length) instead of 1/√D."""

import math

import torch
from torch import Tensor


def linformer_attention(q, k, v, e, f, *, key_padding=None, scale=None) -> Tensor:
    """Wrong default temperature."""
    scale = 1.0 / math.sqrt(e.shape[0]) if scale is None else scale
    if key_padding is not None:
        keep = key_padding[:, None, :, None].to(k.dtype)
        k, v = k * keep, v * keep
    k_proj = torch.einsum("ps,bhsd->bhpd", e, k)
    v_proj = torch.einsum("ps,bhsd->bhpd", f, v)
    return torch.softmax(q @ k_proj.transpose(-1, -2) * scale, dim=-1) @ v_proj
