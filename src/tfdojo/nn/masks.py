"""Attention masks. Convention: boolean masks are *keep* masks (True = may attend), broadcastable to (B, H, T, S).

Queries are aligned to the end of the keys: query i sits at key position S - T + i (a plain forward has T == S;
a decode step against a cache has T < S). Every helper below works on those absolute positions, so the dense
masks the eager oracle uses and the per-tile masks of the tiled kernel come from the same definitions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tfdojo.errors import ConfigError


def query_positions(t: int, s: int, device: torch.device | None = None) -> Tensor:
    """Absolute key positions (T,) of T queries aligned to the end of S keys."""
    return torch.arange(s - t, s, device=device)


def position_keep(q_pos: Tensor, k_pos: Tensor, *, causal: bool, window: int | None) -> Tensor:
    """Boolean (Tq, Tk) keep-mask from positions: causal (key ≤ query) and/or a window (|query - key| < W).

    With ``causal`` the window is Mistral's sliding window: the W most recent keys, the query's own included.
    Without it the window is a symmetric local band (Longformer's local attention, Beltagy et al., 2020).
    """
    distance = q_pos.unsqueeze(1) - k_pos.unsqueeze(0)  # (Tq, Tk): how far back each key lies
    keep = torch.ones(distance.shape, dtype=torch.bool, device=distance.device)
    if causal:
        keep &= distance >= 0
    if window is not None:
        keep &= distance.abs() < window
    return keep


def causal_mask(t: int, s: int, device: torch.device | None = None) -> Tensor:
    """Boolean (T, S) mask, True where query i (at key position S - T + i) may see key j ≤ its position."""
    return position_keep(query_positions(t, s, device), torch.arange(s, device=device), causal=True, window=None)


def window_mask(t: int, s: int, window: int, *, causal: bool, device: torch.device | None = None) -> Tensor:
    """Boolean (T, S) mask of a sliding (causal) or local (two-sided) window of ``window`` positions."""
    check_window(window)
    return position_keep(query_positions(t, s, device), torch.arange(s, device=device), causal=causal, window=window)


def check_window(window: int | None) -> None:
    """Reject a window that would hide every key (the query's own position needs W ≥ 1)."""
    if window is not None and window < 1:
        raise ConfigError(f"attention window must be a positive number of positions, got {window}")


def alibi_bias(slopes: Tensor, q_pos: Tensor, k_pos: Tensor) -> Tensor:
    """Additive (H, Tq, Tk) ALiBi bias -m_h·|i - j| (Press et al., 2022, "Train Short, Test Long").

    For causal attention this is the paper's m_h·(j - i); the absolute value extends it symmetrically to
    bidirectional attention.
    """
    distance = (q_pos.unsqueeze(1) - k_pos.unsqueeze(0)).abs()  # (Tq, Tk)
    return -slopes.view(-1, 1, 1) * distance.to(slopes.dtype)  # (H, Tq, Tk)


def as_additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Turn a boolean keep-mask into an additive bias (0 where kept, the dtype's minimum where masked)."""
    if mask.dtype != torch.bool:
        return mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def masked_out(mask: Tensor) -> Tensor:
    """Where a mask hides a key: False in a boolean keep-mask, at most half the dtype's minimum (or -inf) in an
    additive one (HF's and :func:`as_additive`'s ``finfo.min`` convention, even after a finite bias is added)."""
    return ~mask if mask.dtype == torch.bool else mask <= torch.finfo(mask.dtype).min / 2


def rows_without_keys(mask: Tensor) -> Tensor:
    """(…, T, 1) True for query rows whose every key is hidden; every backend returns 0 for them.

    Left padding makes such rows: a pad position before a prompt sees no real key under the causal mask. The
    softmax of nothing is undefined; 0 (what FlashAttention and torch's SDPA give) keeps such rows inert.
    """
    return masked_out(mask).all(-1, keepdim=True)


def merge_masks(
    causal: bool,
    mask: Tensor | None,
    t: int,
    s: int,
    device: torch.device,
    *,
    window: int | None = None,
    alibi_slopes: Tensor | None = None,
) -> Tensor | None:
    """One dense mask from the causal flag, a window, ALiBi slopes and a user mask (None if nothing applies).

    Boolean when only keep-masks are involved; additive float (H, T, S)-broadcastable once ALiBi is added.
    """
    check_window(window)
    positional = None
    if window is not None or (causal and t > 1):  # one query at the end sees every earlier key
        positional = position_keep(
            query_positions(t, s, device), torch.arange(s, device=device), causal=causal, window=window
        )
    if positional is not None:
        if mask is None:
            mask = positional
        elif mask.dtype == torch.bool:
            mask = mask & positional
        else:
            mask = mask.masked_fill(~positional, torch.finfo(mask.dtype).min)
    if alibi_slopes is None:
        return mask
    slopes = alibi_slopes.to(torch.promote_types(alibi_slopes.dtype, torch.float32))
    bias = alibi_bias(slopes, query_positions(t, s, device), torch.arange(s, device=device))
    return bias if mask is None else as_additive(mask, slopes.dtype) + bias  # broadcast to (B, H, T, S)


def key_padding_mask(attention_mask: Tensor) -> Tensor:
    """(B, S) 1/0 or bool, 1 = real token -> (B, 1, 1, S) keep-mask that hides padded keys."""
    return attention_mask.bool()[:, None, None, :]


def check_key_padding(mask: Tensor | None, backend: str) -> None:
    """Refuse any mask but a boolean key-padding mask (B, 1, 1, S): all a backend without a score matrix can apply."""
    if mask is not None and (mask.dtype != torch.bool or mask.dim() != 4 or mask.shape[1:3] != (1, 1)):
        raise ConfigError(
            f"the {backend} backend takes only a boolean key-padding mask (B, 1, 1, S), got {tuple(mask.shape)} "
            f"{mask.dtype}; use eager or tiled for other masks"
        )


def block_layout(
    n_q_blocks: int, n_k_blocks: int, *, local: int = 1, stride: int | None = None, global_blocks: int = 0
) -> Tensor:
    """Boolean (nQ, nK) block layout of a sparse pattern; query block r sits at key block r + nK - nQ.

    Kept blocks: the ``local`` nearest key blocks on each side (the diagonal included, |r - c| < local);
    every ``stride``-th block counted back from the diagonal (Child et al., 2019, "Generating Long Sequences
    with Sparse Transformers", strided pattern); and ``global_blocks`` leading blocks that every query reads
    and that read every key (BigBird's global tokens, Zaheer et al., 2020). Causality is applied per token on
    top of the layout, not here.
    """
    if local < 1 or global_blocks < 0 or (stride is not None and stride < 1):
        raise ConfigError(
            f"block layout needs local ≥ 1, stride ≥ 1, global_blocks ≥ 0; got {local}, {stride}, {global_blocks}"
        )
    rows = torch.arange(n_k_blocks - n_q_blocks, n_k_blocks).unsqueeze(1)  # (nQ, 1) absolute block of each row
    cols = torch.arange(n_k_blocks).unsqueeze(0)  # (1, nK)
    distance = rows - cols  # (nQ, nK)
    keep = distance.abs() < local
    if stride is not None:
        keep |= distance.remainder(stride) == 0
    if global_blocks:
        keep |= (cols < global_blocks) | (rows < global_blocks)
    return keep


def expand_layout(layout: Tensor, block: int, t: int, s: int) -> Tensor:
    """Dense boolean (T, S) keep-mask of a block layout over queries aligned to the end of S keys."""
    q_block = query_positions(t, s, layout.device) // block  # (T,)
    k_block = torch.arange(s, device=layout.device) // block  # (S,)
    row_offset = layout.shape[1] - layout.shape[0]  # absolute key block of layout row 0
    return layout[q_block - row_offset][:, k_block]  # (T, S)
