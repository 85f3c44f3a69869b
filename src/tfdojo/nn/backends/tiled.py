"""Tiled attention with an online softmax — FlashAttention's algorithm, written in PyTorch for the CPU.

Dao et al. (2022), "FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness", and
Dao (2023), "FlashAttention-2". The (T, S) score matrix is never formed; keys are visited tile by tile
and each query row keeps a running maximum m, a running denominator l and an unnormalised output:

    for each query tile Qi:                    m = -inf, l = 0, acc = 0
        for each key tile Kj, Vj it can see:   s   = Qi Kjᵀ · scale + bias
                                               m'  = max(m, rowmax(s))
                                               p   = exp(s - m')
                                               l   = l · exp(m - m') + rowsum(p)
                                               acc = acc · exp(m - m') + p Vj;   m = m'
        O_i = acc / l;  L_i = m + log l        (the logsumexp, saved for the backward)

The backward recomputes every tile's probabilities from the saved logsumexp, P = exp(S - L), and uses
dS = P ⊙ (dP - rowsum(dO ⊙ O)); memory stays O(T + S) per head. Tiles that a causal or windowed mask
hides entirely are skipped, so a causal pass does about half the work. ALiBi is computed per tile from the
tile's positions; a padding mask (B, 1, 1, S) is sliced per tile.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.nn.attention import check_shapes, register_backend
from tfdojo.nn.masks import alibi_bias, check_window, masked_out, position_keep


@dataclass(frozen=True)
class TileGeometry:
    """Everything about a call that fixes which tiles exist and how each is masked."""

    t: int
    s: int
    causal: bool
    window: int | None
    block_q: int
    block_k: int
    scale: float

    def __post_init__(self) -> None:
        if self.block_q < 1 or self.block_k < 1:
            raise ConfigError(f"tile sizes must be positive, got block_q={self.block_q}, block_k={self.block_k}")
        check_window(self.window)

    def key_range(self, first: int, last: int) -> tuple[int, int]:
        """Keys [lo, hi) that queries at absolute positions first..last may see."""
        lo, hi = 0, self.s
        if self.causal:
            hi = min(hi, last + 1)
        if self.window is not None:
            lo = max(lo, first - self.window + 1)
            if not self.causal:
                hi = min(hi, last + self.window)
        return lo, hi

    def fully_visible(self, first: int, last: int, k0: int, k1: int) -> bool:
        """True when every query in first..last sees every key in [k0, k1), so no positional mask is needed."""
        if self.causal and k1 - 1 > first:
            return False
        if self.window is None:
            return True
        return last - k0 < self.window and (self.causal or k1 - 1 - first < self.window)

    def tiles(self) -> Iterator[tuple[int, int, Iterator[tuple[int, int, bool]]]]:
        """Query tiles (q0, q1) with their visible key tiles (k0, k1, needs_positional_mask)."""
        offset = self.s - self.t  # queries sit at the end of the keys
        for q0 in range(0, self.t, self.block_q):
            q1 = min(q0 + self.block_q, self.t)
            first, last = offset + q0, offset + q1 - 1
            lo, hi = self.key_range(first, last)
            keys = (
                (k0, min(k0 + self.block_k, hi), not self.fully_visible(first, last, k0, min(k0 + self.block_k, hi)))
                for k0 in range(lo, hi, self.block_k)
            )
            yield q0, q1, keys


def _tile_scores(
    q_tile: Tensor,
    k: Tensor,
    geo: TileGeometry,
    q0: int,
    q1: int,
    k0: int,
    k1: int,
    positional: bool,
    mask: Tensor | None,
    slopes: Tensor | None,
) -> Tensor:
    """Scaled, biased, masked scores (B, Hkv, G, bq, bk) of one tile; q_tile is (B, Hkv, G·bq, D), pre-scaled."""
    b, hkv = q_tile.shape[:2]
    scores = torch.matmul(q_tile, k[:, :, k0:k1].transpose(-1, -2))  # (B, Hkv, G·bq, bk)
    scores = scores.view(b, hkv, -1, q1 - q0, k1 - k0)  # (B, Hkv, G, bq, bk)
    offset = geo.s - geo.t
    if positional or slopes is not None:
        q_pos = torch.arange(offset + q0, offset + q1, device=k.device)
        k_pos = torch.arange(k0, k1, device=k.device)
        if slopes is not None:
            scores = scores + alibi_bias(slopes, q_pos, k_pos).view(hkv, -1, q1 - q0, k1 - k0)
        if positional:
            keep = position_keep(q_pos, k_pos, causal=geo.causal, window=geo.window)
            scores = scores.masked_fill(~keep, -math.inf)
    if mask is not None:
        rows = slice(q0, q1) if mask.shape[-2] > 1 else slice(None)
        cols = slice(k0, k1) if mask.shape[-1] > 1 else slice(None)
        part = mask[..., rows, cols]
        scores = scores.masked_fill(~part, -math.inf) if part.dtype == torch.bool else scores + part
    return scores


def _grouped_mask(mask: Tensor | None, hq: int, hkv: int) -> Tensor | None:
    """A (B|1, Hq|1, T|1, S|1) mask as (B|1, Hkv|1, G|1, T|1, S|1) so it lines up with grouped scores."""
    if mask is None:
        return None
    while mask.dim() < 4:
        mask = mask.unsqueeze(0)
    b, h, t, s = mask.shape
    if h == 1:
        return mask.view(b, 1, 1, t, s)  # (B|1, 1, 1, T|1, S|1)
    if h != hq:
        raise ConfigError(f"attention mask has {h} heads; expected 1 or {hq}")
    return mask.view(b, hkv, hq // hkv, t, s)  # (B|1, Hkv, G, T|1, S|1)


def tiled_forward(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, slopes: Tensor | None, geo: TileGeometry
) -> tuple[Tensor, Tensor]:
    """Output (B, Hkv, G, T, D) and logsumexp (B, Hkv, G, T, 1) of grouped queries q (B, Hkv, G, T, D)."""
    b, hkv, g, _, d = q.shape
    out = torch.empty_like(q)
    lse = torch.empty((b, hkv, g, geo.t, 1), dtype=q.dtype, device=q.device)
    # A column of ones after V makes P·[V | 1] yield the row sums l with the weighted values, in the same matmul.
    v_ones = torch.cat([v, torch.ones_like(v[..., :1])], dim=-1).view(b * hkv, -1, d + 1)  # (B·Hkv, S, D+1)
    for q0, q1, keys in geo.tiles():
        rows = g * (q1 - q0)
        q_tile = (q[:, :, :, q0:q1] * geo.scale).reshape(b, hkv, rows, d)  # (B, Hkv, G·bq, D)
        run_max = torch.full((b, hkv, g, q1 - q0, 1), -math.inf, dtype=q.dtype, device=q.device)
        acc = torch.zeros((b * hkv, rows, d + 1), dtype=q.dtype, device=q.device)  # [Σ p·v | Σ p] per row
        for k0, k1, positional in keys:
            scores = _tile_scores(q_tile, k, geo, q0, q1, k0, k1, positional, mask, slopes)
            new_max = torch.maximum(run_max, scores.amax(-1, keepdim=True))
            shift = new_max.masked_fill(new_max == -math.inf, 0.0)  # rows with nothing visible yet stay at 0
            probs = scores.sub_(shift).exp_()  # (B, Hkv, G, bq, bk), in place: the scores are not needed again
            acc.mul_((run_max - shift).exp_().view(b * hkv, rows, 1))  # rescale the past to the new maximum
            acc.baddbmm_(probs.view(b * hkv, rows, k1 - k0), v_ones[:, k0:k1])  # acc += P·[V | 1]
            run_max = new_max
        acc = acc.view(b, hkv, g, q1 - q0, d + 1)  # (B, Hkv, G, bq, D+1)
        run_sum = acc[..., d:]
        seen = run_sum > 0  # a row whose every key is masked gets output 0 and logsumexp +inf (so P = 0)
        out[:, :, :, q0:q1] = acc[..., :d] / torch.where(seen, run_sum, 1.0)
        lse[:, :, :, q0:q1] = torch.where(seen, run_max + run_sum.log(), math.inf)
    return out, lse


def tiled_backward(
    grad_out: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    out: Tensor,
    lse: Tensor,
    mask: Tensor | None,
    slopes: Tensor | None,
    geo: TileGeometry,
) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of q (B, Hkv, G, T, D), k and v (B, Hkv, S, D), recomputing each tile's P from the logsumexp."""
    b, hkv, g, _, d = q.shape
    dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
    delta = (grad_out * out).sum(-1, keepdim=True)  # (B, Hkv, G, T, 1): rowsum(dO ⊙ O) = rowsum(P ⊙ dP)
    for q0, q1, keys in geo.tiles():
        rows = g * (q1 - q0)
        q_tile = (q[:, :, :, q0:q1] * geo.scale).reshape(b, hkv, rows, d)  # (B, Hkv, G·bq, D)
        do_tile = grad_out[:, :, :, q0:q1].reshape(b, hkv, rows, d)  # (B, Hkv, G·bq, D)
        dq_tile = torch.zeros_like(q_tile)
        for k0, k1, positional in keys:
            scores = _tile_scores(q_tile, k, geo, q0, q1, k0, k1, positional, mask, slopes)
            probs = scores.sub_(lse[:, :, :, q0:q1]).exp_().view(b, hkv, rows, k1 - k0)  # (B, Hkv, G·bq, bk)
            dv[:, :, k0:k1] += torch.matmul(probs.transpose(-1, -2), do_tile)  # sums over the G sharing heads
            dprobs = torch.matmul(do_tile, v[:, :, k0:k1].transpose(-1, -2))  # (B, Hkv, G·bq, bk)
            dprobs = dprobs.view(b, hkv, g, q1 - q0, k1 - k0).sub_(delta[:, :, :, q0:q1])
            dscores = dprobs.mul_(probs.view_as(dprobs)).view(b, hkv, rows, k1 - k0)  # (B, Hkv, G·bq, bk)
            dq_tile += torch.matmul(dscores, k[:, :, k0:k1])
            dk[:, :, k0:k1] += torch.matmul(dscores.transpose(-1, -2), q_tile)  # q_tile already carries the scale
        dq[:, :, :, q0:q1] = dq_tile.view(b, hkv, g, q1 - q0, d) * geo.scale
    return dq, dk, dv


class TiledAttention(torch.autograd.Function):
    """Autograd wrapper: saves q, k, v, O and the logsumexp — never the (T, S) probabilities."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Tensor | None,
        slopes: Tensor | None,
        geo: TileGeometry,
    ) -> Tensor:
        """Run the tiled forward; keep what the backward needs to recompute each tile."""
        out, lse = tiled_forward(q, k, v, mask, slopes, geo)
        ctx.save_for_backward(q, k, v, out, lse, mask, slopes)
        ctx.geo = geo  # type: ignore[attr-defined]
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        """Gradients for q, k, v; none for the mask, the ALiBi slopes or the geometry."""
        q, k, v, out, lse, mask, slopes = ctx.saved_tensors  # type: ignore[attr-defined]
        dq, dk, dv = tiled_backward(grad_out.contiguous(), q, k, v, out, lse, mask, slopes, ctx.geo)  # type: ignore[attr-defined]
        return dq, dk, dv, None, None, None


@register_backend("tiled")
def tiled_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    window: int | None = None,
    alibi_slopes: Tensor | None = None,
    block_q: int = 256,
    block_k: int = 256,
) -> Tensor:
    """Exact attention in O(T + S) memory per head via tiles and an online softmax (FlashAttention-2).

    Tiles of 256 × 256 keep a (9 heads × 256 × 256) fp32 score tile at 2.4 MB, within a CPU's cache reach,
    while the matmuls stay large enough for torch's kernels (measured in bench/attention.py).
    """
    groups = check_shapes(q, k, v)
    b, hq, t, d = q.shape
    hkv, s = k.shape[1], k.shape[2]
    work = torch.promote_types(q.dtype, torch.float32)  # half-precision inputs accumulate in fp32
    geo = TileGeometry(t, s, causal, window, block_q, block_k, 1.0 / math.sqrt(d) if scale is None else scale)
    qg = q.to(work).reshape(b, hkv, groups, t, d)  # (B, Hkv, G, T, D); copies a transposed q
    slopes = None if alibi_slopes is None else alibi_slopes.to(work)
    grouped = _grouped_mask(mask, hq, hkv)
    if grouped is not None and grouped.dtype != torch.bool:  # finfo.min marks a hidden key: make it -inf, so
        grouped = grouped.masked_fill(masked_out(grouped), -math.inf).to(work)  # a row hiding all keys gives 0
    out = TiledAttention.apply(qg, k.to(work).contiguous(), v.to(work).contiguous(), grouped, slopes, geo)
    return out.reshape(b, hq, t, d).to(q.dtype)  # (B, Hq, T, D)
