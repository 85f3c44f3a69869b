"""Scaled dot-product attention with a registry of interchangeable backends.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d + M) V          (Vaswani et al., 2017, "Attention Is All You Need")

Shapes: q (B, Hq, T, D); k, v (B, Hkv, S, D). When Hkv < Hq the query heads share key/value heads in groups
of G = Hq / Hkv (grouped-query attention, Ainslie et al. 2023; Hkv = 1 is multi-query attention):

    query heads  q0 q1 q2 | q3 q4 q5 | q6 q7 q8        Hq = 9, Hkv = 3, G = 3
    kv heads        k0    |    k1    |    k2

Masks: ``mask`` is either boolean (True = may attend) or additive float, broadcastable to (B, Hq, T, S).
``causal=True`` aligns the queries to the *end* of the keys, so query i sits at key position S - T + i;
that is the geometry of a decode step against a cache (T < S) as well as of a plain forward (T == S).
``window=W`` keeps only keys within W positions (Mistral's sliding window when causal, a local band when not);
``alibi_slopes`` (Hq,) adds ALiBi's linear distance bias. Both are options of eager, sdpa and tiled alike.
``dropout_p`` (eager and sdpa only) drops attention probabilities, as GPT-2's ``attn_dropout``: the caller passes
it in training only.
A query row that sees no key (a pad position before a left-padded prompt) gets output 0 from every backend.

``eager`` is the readable oracle; every other backend is tested against it. The backends that change the
maths (linear, Performer, Linformer) and the faster exact ones (tiled, block-sparse) live in
``tfdojo.nn.backends``, imported on the first lookup by name so that registering them cannot cause an
import cycle.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.nn.masks import as_additive, merge_masks, rows_without_keys

AttentionBackend = Callable[..., Tensor]
_BACKENDS: dict[str, AttentionBackend] = {}


def register_backend(name: str) -> Callable[[AttentionBackend], AttentionBackend]:
    """Add an attention implementation under ``name`` (signature of :func:`eager_attention`)."""

    def add(fn: AttentionBackend) -> AttentionBackend:
        _BACKENDS[name] = fn
        return fn

    return add


def _load_backends() -> None:
    import tfdojo.nn.backends  # noqa: F401  (registers the remaining backends on import)


def available_backends() -> list[str]:
    """Names accepted by ``scaled_dot_product(..., backend=...)``."""
    _load_backends()
    return sorted(_BACKENDS)


def get_backend(name: str) -> AttentionBackend:
    """The attention function registered under ``name``; ConfigError naming the choices otherwise."""
    if name not in _BACKENDS:
        _load_backends()
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ConfigError(
            f"unknown attention backend {name!r}; choose one of {', '.join(available_backends())}"
        ) from None


def check_shapes(q: Tensor, k: Tensor, v: Tensor) -> int:
    """Validate q (B, Hq, T, D), k/v (B, Hkv, S, D) and return the group size G = Hq / Hkv."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ConfigError(f"attention expects 4-D q, k, v (B, H, T, D); got {tuple(q.shape)}, {tuple(k.shape)}")
    hq, hkv = q.shape[1], k.shape[1]
    if hq % hkv:
        raise ConfigError(f"query heads ({hq}) must be a multiple of key/value heads ({hkv})")
    return hq // hkv


@register_backend("eager")
def eager_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    window: int | None = None,
    alibi_slopes: Tensor | None = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """Written-out attention: scores, scale, mask, softmax (fp32 or wider), dropout, weighted sum. The oracle."""
    groups = check_shapes(q, k, v)
    b, hq, t, d = q.shape
    hkv, s = k.shape[1], k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    qg = q.view(b, hkv, groups, t, d)  # (B, Hkv, G, T, D): each kv head serves G query heads
    work = torch.promote_types(q.dtype, torch.float32)  # fp32 at least; fp64 stays fp64 for references
    scores = torch.einsum("bhgtd,bhsd->bhgts", qg.to(work), k.to(work)) * scale  # (B, Hkv, G, T, S)
    full = merge_masks(causal, mask, t, s, q.device, window=window, alibi_slopes=alibi_slopes)
    if full is not None:
        scores = scores.view(b, hq, t, s) + as_additive(full, work)  # broadcast over (B, Hq, T, S)
        scores = scores.view(b, hkv, groups, t, s)
    probs = torch.softmax(scores, dim=-1)
    if dropout_p:
        probs = torch.native_dropout(probs, dropout_p, True)[0]  # dropped, the rest scaled by 1/(1-p)
    out = torch.einsum("bhgts,bhsd->bhgtd", probs, v.to(work)).reshape(b, hq, t, d)  # (B, Hq, T, D)
    if full is not None:  # a query that sees no key attends to nothing: output 0 (masks.rows_without_keys)
        out = out.masked_fill(rows_without_keys(full), 0.0)  # zeroes the output, so autograd keeps one probs copy
    return out.to(q.dtype)


@register_backend("sdpa")
def sdpa_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    window: int | None = None,
    alibi_slopes: Tensor | None = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """torch.nn.functional.scaled_dot_product_attention (fused kernels where the inputs allow)."""
    groups = check_shapes(q, k, v)
    t, s = q.shape[2], k.shape[2]
    fused = {"scale": scale, "enable_gqa": groups > 1, "dropout_p": dropout_p}
    if mask is None and window is None and alibi_slopes is None and causal and t == s:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, **fused)
    full = merge_masks(causal, mask, t, s, q.device, window=window, alibi_slopes=alibi_slopes)
    if full is None:
        return F.scaled_dot_product_attention(q, k, v, **fused)
    empty = rows_without_keys(full)  # torch zeroes all-False boolean rows but not finfo.min additive ones
    if full.dtype != torch.bool:
        full = full.to(q.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=full, **fused)
    return out.masked_fill(empty, 0.0)


def scaled_dot_product(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    backend: str = "eager",
    **options: object,
) -> Tensor:
    """Attention through a named backend; q (B, Hq, T, D), k/v (B, Hkv, S, D) -> (B, Hq, T, D).

    ``options`` go to the backend: ``window``/``alibi_slopes`` (eager, sdpa, tiled), tile sizes (tiled),
    the sparsity pattern (block_sparse), a feature map (linear) or projections (linformer).
    """
    return get_backend(backend)(q, k, v, causal=causal, mask=mask, scale=scale, **options)
