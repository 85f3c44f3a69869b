"""Block-sparse attention: each query block reads only the key blocks its layout keeps.

A layout (see :func:`tfdojo.nn.masks.block_layout`) combines local blocks around the diagonal, every
``stride``-th block behind it (Child et al., 2019, strided Sparse Transformer) and leading global blocks
(BigBird, Zaheer et al., 2020). For block size b and W kept blocks per row the scores are (T, W·b) instead of
(T, S)::

    key blocks →  k0 k1 k2 k3 k4 k5      local=1, stride=3, global_blocks=1, causal
    q-block 0     ■                      (■ kept, · skipped; causal within the diagonal block;
    q-block 1     ■  ■                    q-block 0 is global: it would also be read by every
    q-block 2     ■  ·  ■                 query and read every key if it were not causal)
    q-block 3     ■  ·  ·  ■
    q-block 4     ■  ■  ·  ·  ■
    q-block 5     ■  ·  ■  ·  ·  ■

Every regular row gathers its kept key blocks (padded to the widest row) and attends over them at once;
the global rows, which read everything, attend densely. The dense oracle is eager attention with
:func:`tfdojo.nn.masks.expand_layout` as the mask.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.nn.attention import check_shapes, eager_attention, register_backend
from tfdojo.nn.masks import block_layout, check_key_padding, rows_without_keys


def _gather_plan(layout: Tensor) -> tuple[Tensor, Tensor]:
    """Per layout row, the kept key-block indices first (nQ, W) and which of the W slots are real (nQ, W)."""
    counts = layout.sum(1)  # (nQ,)
    width = int(counts.max())  # the layout is a small index tensor on the host: reading it is no device sync
    order = torch.argsort((~layout).to(torch.int8), dim=1, stable=True)[:, :width]  # kept blocks come first
    return order, torch.arange(width, device=layout.device) < counts.unsqueeze(1)


@register_backend("block_sparse")
def block_sparse_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    block: int = 64,
    local: int = 1,
    stride: int | None = None,
    global_blocks: int = 0,
) -> Tensor:
    """Attention restricted to a block layout (local + strided + global blocks), memory O(T · W · block)."""
    groups = check_shapes(q, k, v)
    if block < 1:
        raise ConfigError(f"block must be a positive number of positions, got {block}")
    check_key_padding(mask, "block_sparse")
    t, s, d = q.shape[2], k.shape[2], q.shape[3]
    if t > s:
        raise ConfigError(f"block_sparse needs at least as many keys as queries; got T={t}, S={s}")
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    n_k = math.ceil(s / block)
    first_row = (s - t) // block  # absolute block of the first query
    layout = block_layout(n_k - first_row, n_k, local=local, stride=stride, global_blocks=global_blocks)

    # Global query rows read every key: plain attention over them (their queries sit at positions < g·block).
    n_global = min(max(global_blocks * block - (s - t), 0), t)  # how many of our queries are global
    parts = []
    if n_global:
        reach = (s - t) + n_global if causal else s  # causal global queries see no key past themselves
        part_mask = None if mask is None else mask[..., :reach]
        parts.append(
            eager_attention(
                q[:, :, :n_global], k[:, :, :reach], v[:, :, :reach], causal=causal, mask=part_mask, scale=scale
            )
        )
    if n_global < t:
        parts.append(_regular_rows(q[:, :, n_global:], k, v, layout, causal, mask, scale, block, groups))
    return torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]


def _regular_rows(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    layout: Tensor,
    causal: bool,
    mask: Tensor | None,
    scale: float,
    block: int,
    groups: int,
) -> Tensor:
    """Sparse attention for queries aligned to the end of the keys whose rows are not global."""
    b, hq, t, d = q.shape
    hkv, s = k.shape[1], k.shape[2]
    n_k = math.ceil(s / block)
    start = s - t  # absolute position of the first query
    first_row = start // block
    rows = layout[first_row - (n_k - layout.shape[0]) :]  # (nR, nK): the layout rows these queries use
    n_rows = rows.shape[0]
    order, real = _gather_plan(rows)  # (nR, W)
    width = order.shape[1]

    lead, trail = start - first_row * block, n_k * block - s  # pad queries and keys onto the block grid
    qb = F.pad(q, (0, 0, lead, trail)).view(b, hkv, groups, n_rows, block, d)  # (B, Hkv, G, nR, b, D)
    kb = F.pad(k, (0, 0, 0, trail)).view(b, hkv, n_k, block, d)[:, :, order]  # (B, Hkv, nR, W, b, D)
    vb = F.pad(v, (0, 0, 0, trail)).view(b, hkv, n_k, block, d)[:, :, order]
    kb = kb.reshape(b, hkv, n_rows, width * block, d)  # (B, Hkv, nR, W·b, D)
    vb = vb.reshape(b, hkv, n_rows, width * block, d)

    offsets = torch.arange(block, device=q.device)
    q_pos = (first_row + torch.arange(n_rows, device=q.device)).unsqueeze(1) * block + offsets  # (nR, b)
    k_pos = (order.to(q.device).unsqueeze(-1) * block + offsets).reshape(n_rows, width * block)  # (nR, W·b)
    k_real = (real.to(q.device).repeat_interleave(block, dim=1)) & (k_pos < s)  # (nR, W·b)
    keep = k_real.unsqueeze(1).expand(n_rows, block, width * block)  # (nR, b, W·b)
    if causal:
        keep = keep & (k_pos.unsqueeze(1) <= q_pos.unsqueeze(2))
    if mask is not None:
        padding = mask.reshape(-1, s)[:, k_pos.clamp_max(s - 1)]  # (B|1, nR, W·b)
        keep = keep & padding[:, None, None, :, None, :]  # (B|1, 1, 1, nR, b, W·b)

    work = torch.promote_types(q.dtype, torch.float32)
    scores = torch.einsum("bhgnqd,bhnkd->bhgnqk", qb.to(work), kb.to(work)) * scale  # (B, Hkv, G, nR, b, W·b)
    scores = scores.masked_fill(~keep, torch.finfo(work).min)
    out = torch.einsum("bhgnqk,bhnkd->bhgnqd", scores.softmax(-1), vb.to(work))  # (B, Hkv, G, nR, b, D)
    out = out.masked_fill(rows_without_keys(keep), 0.0)  # a row that sees no key gives 0
    out = out.reshape(b, hq, n_rows * block, d)[:, :, lead : lead + t]  # (B, Hq, T, D)
    return out.to(q.dtype)
