"""An inference-time re-layout of a Llama for fast decoding and prefill on CPU, beside the readable eager model.

A decode step multiplies one token's vector by every weight matrix, so it is bound by memory traffic and by
the fixed cost of each operator call (~5-15 µs in eager PyTorch). The eager model spends ~45 calls per layer;
this one spends ~20, by

- fusing the Q, K and V projections into one matrix, and the SwiGLU gate and up projections into another
  (the original parameters become row views of the fused ones);
- rotating queries and keys together with cos/sin tables computed once for every position;
- calling the fused ``F.rms_norm``;
- attending with one query (a decode step) without building a mask, in fp32 (``_one_query_attention``).

Each matrix is kept in the layout whose product was fastest on the reference AMD EPYC (Zen 4, AVX-512 with
bf16), measured over SmolLM2's 30 layers of matrices, best of 9 (one thread unless said):

    product                       F.linear (out, in)   x @ W_t (in, out)   oneDNN pre-packed
    bf16, one row (decode)              30.5 ms              30.2 ms             21.4 ms
    fp32, one row (decode)              40.8 ms              31.6 ms             39.5 ms
    fp32, one row, two threads            —              42 ms / step        36 ms / step (whole decode step)
    fp32, 512 rows (prefill, 4 layers)   268 ms               294 ms              180 ms

MKL's single-row product (what ``x @ W_t`` runs) uses one thread whatever the setting; oneDNN's spreads over all
of them. So bf16 uses oneDNN's packed weights (``torch.ops.mkldnn._reorder_linear_weight``, the layout inductor
gives frozen CPU linears) for every product; fp32 too, except for one row on one thread, where ``x @ W_t`` wins.
The copies cost memory: in fp32 two more copies of the weights (transposed and packed), in bf16 one (packed);
the (out, in) fused matrices stay shared with the eager model. Without oneDNN (or bf16 without AVX-512) the
plain products are used.

The arithmetic is the eager model's; ``tests/infer/test_generate_fast.py`` holds the two equal (fp32 to 1e-5
and in greedy tokens; bf16 by the FlashAttention criterion: at most twice the eager model's rounding error).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.infer import gemv_kernel
from tfdojo.infer.cache import StaticKVCache
from tfdojo.models.decoding import decoder_masks
from tfdojo.models.llama import Llama
from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.ffn import SwiGLU
from tfdojo.nn.kv import KVCache
from tfdojo.nn.norms import RMSNorm
from tfdojo.nn.rope import rotate_half
from tfdojo.nn.self_attention import Attention


def _fuse_rows(linears: list[nn.Linear]) -> Tensor:
    """Stack the weights of several Linear layers into one (Σout, in) matrix; re-point each to its row view."""
    fused = torch.cat([lin.weight.detach() for lin in linears], dim=0)  # (Σout, in)
    start = 0
    for lin in linears:
        rows = lin.weight.shape[0]
        lin.weight.data = fused[start : start + rows]  # a contiguous view: the eager module still works
        start += rows
    return fused


def _fused_bias(linears: list[nn.Linear]) -> Tensor | None:
    """The biases of Linear layers fused by ``_fuse_rows``, concatenated in the same order (None without biases)."""
    return None if linears[0].bias is None else torch.cat([lin.bias.detach() for lin in linears])


def _rms_norm(x: Tensor, norm: RMSNorm) -> Tensor:
    """RMSNorm's arithmetic (statistics in fp32, weight applied in the input dtype) through the fused kernel."""
    return rms_norm_with(x, norm.weight, norm.eps)


def rms_norm_with(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """``_rms_norm`` with the norm's weight and eps given apart (a stacked layer's weight, ``layer_stack``)."""
    return weight * F.rms_norm(x.float(), x.shape[-1:], eps=eps).to(x.dtype)


def onednn_packs(dtype: torch.dtype) -> bool:
    """Whether this torch build can pre-pack ``dtype`` weights for oneDNN's matrix products (needs AVX-512 for bf16)."""
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_reorder_linear_weight"):
        return False  # private ops (inductor's): a torch without them falls back to the plain products
    return dtype == torch.float32 or (dtype == torch.bfloat16 and torch.ops.mkldnn._is_mkldnn_bf16_supported())


class _Matrix:
    """One weight (and optional bias) in the layouts with the fastest products at its dtype (module docstring).

    ``transposed`` (in, out) serves fp32 single rows on one thread; ``packed`` is oneDNN's blocked layout (the one
    inductor uses for frozen CPU linears), built by ``torch.ops.mkldnn._reorder_linear_weight``; ``weight``
    (out, in) is the fallback, shared with the eager model.
    """

    def __init__(self, weight: Tensor, bias: Tensor | None = None) -> None:
        self.weight = weight.detach()
        self.bias = None if bias is None else bias.detach()
        fp32 = self.weight.dtype == torch.float32
        self.transposed = self.weight.t().contiguous() if fp32 else None  # (in, out)
        self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight, 1) if onednn_packs(weight.dtype) else None

    def __call__(self, x: Tensor) -> Tensor:
        one_row_one_thread = x.numel() == x.shape[-1] and torch.get_num_threads() == 1
        if self.transposed is not None and (one_row_one_thread or self.packed is None):
            y = x @ self.transposed  # (..., out)
            return y if self.bias is None else y + self.bias
        if self.packed is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)


class _FastLayer:
    """One decoder block's weights, laid out for few and large matrix products."""

    def __init__(self, block: nn.Module) -> None:
        attn, ffn = block.attn, block.ffn
        self.n_heads, self.n_kv_heads, self.head_dim = attn.n_heads, attn.n_kv_heads, attn.head_dim
        self.backend, self.window = attn.backend, attn.window
        qkv = [attn.q_proj, attn.k_proj, attn.v_proj]
        self.qkv = _Matrix(_fuse_rows(qkv), _fused_bias(qkv))  # dim -> (Hq + 2·Hkv)·D
        self.o = _Matrix(attn.o_proj.weight, attn.o_proj.bias)
        self.gate_up = _Matrix(_fuse_rows([ffn.gate, ffn.up]), _fused_bias([ffn.gate, ffn.up]))  # dim -> 2·hidden
        self.down = _Matrix(ffn.down.weight, ffn.down.bias)
        self.norm1, self.norm2 = block.norm1, block.norm2
        self.attend_kernel = False  # one-query attention by our AVX2 kernel (QuantLlama turns it on where built)


class FastLlama(nn.Module):
    """Same forward signature and logits as :class:`~tfdojo.models.llama.Llama`, with fewer, fused operations."""

    def __init__(self, model: Llama) -> None:
        super().__init__()
        if not self.supports(model):
            raise ConfigError("FastLlama covers Llama blocks with a SwiGLU FFN and plain attention; use the model")
        c = model.config
        self.config, self.model = c, model  # the eager model keeps the parameters (now views of fused weights)
        self.layers = [_FastLayer(block) for block in model.layers]
        self.lm_head = _Matrix(model.lm_head.weight)
        # RoPE tables for every position, with the scaling's θ and cos/sin factor (the eager model's arithmetic);
        # dynamic NTK's θ follow the sequence length, so its tables come from the model's RotaryEmbedding per call
        self.cos = self.sin = None
        if c.rope_scaling is None or c.rope_scaling.kind != "dynamic":
            self.cos, self.sin = model.rope(torch.arange(c.max_seq_len), model.embed.weight.dtype)  # (S, D) each

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """True for a Llama of exactly the standard parts (no Mixtral experts); any RoPE scaling or window."""
        return isinstance(model, Llama) and all(
            type(b.ffn) is SwiGLU and type(b.attn) is Attention and type(b.norm1) is type(b.norm2) is RMSNorm
            for b in model.layers
        )

    @torch.inference_mode()
    def forward(
        self,
        input_ids: Tensor,
        *,
        positions: Tensor | None = None,
        attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> Tensor:
        """Logits (B, T, V), or (B, 1, V) with ``last_only``."""
        b, t = input_ids.shape
        past = cache.length if cache is not None else 0
        positions, mask = decoder_masks(input_ids, past, positions, attention_mask)
        if self.cos is None:
            cos, sin = self.model.rope(positions, self.model.embed.weight.dtype)  # (B|1, T, D) each
        else:
            cos, sin = self.cos[positions], self.sin[positions]  # (B|1, T, D) each
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B|1, 1, T, D): shared by every head
        x = self.model.embed(input_ids)  # (B, T, dim)
        for i, layer in enumerate(self.layers):
            x = x + self._attention(layer, _rms_norm(x, layer.norm1), cos, sin, mask, cache, i)
            gate, up = layer.gate_up(_rms_norm(x, layer.norm2)).chunk(2, dim=-1)  # (B, T, hidden) each
            x = x + layer.down(F.silu(gate) * up)
        if cache is not None:
            cache.advance(t)
        if last_only:
            x = x[:, -1:]
        return self.lm_head(_rms_norm(x, self.model.norm))

    @staticmethod
    def _attention(
        layer: _FastLayer, h: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None, cache: KVCache | None, i: int
    ) -> Tensor:
        b, t, _ = h.shape
        hq, hkv, d = layer.n_heads, layer.n_kv_heads, layer.head_dim
        qkv = layer.qkv(h).view(b, t, hq + 2 * hkv, d).transpose(1, 2)  # (B, Hq+2Hkv, T, D)
        qk = qkv[:, : hq + hkv]  # (B, Hq+Hkv, T, D): queries and keys share one rotation
        qk = qk * cos + rotate_half(qk) * sin
        q, k, v = qk[:, :hq], qk[:, hq:], qkv[:, hq + hkv :]  # (B, Hq|Hkv|Hkv, T, D)
        kernel = layer.attend_kernel and t == 1 and b == 1 and mask is None and isinstance(cache, StaticKVCache)
        if kernel and cache.k.dtype == q.dtype == torch.bfloat16:
            y = gemv_kernel.attend_one(q, cache.k, cache.v, k, v, i, cache.length)  # the cache read in place
            cache.update(i, k, v)
            return layer.o(y.transpose(1, 2).reshape(b, t, hq * d))
        if cache is not None:
            k, v = cache.update(i, k, v)  # (B, Hkv, S, D)
        if t == 1 and mask is None:  # one new query sees every cached key (in its window): no mask to build
            if layer.window is not None:
                k, v = k[:, :, -layer.window :], v[:, :, -layer.window :]  # (B, Hkv, ≤W, D): the last W keys
            y = _one_query_attention(q, k, v)  # (B, Hq, 1, D)
        else:
            options = {} if layer.window is None else {"window": layer.window}
            y = scaled_dot_product(q, k, v, causal=True, mask=mask, backend=layer.backend, **options)  # (B, Hq, T, D)
        return layer.o(y.transpose(1, 2).reshape(b, t, hq * d))  # (B, T, dim)


def _one_query_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """A decode step's attention, q (B, Hq, 1, D) over the whole cache k, v (B, Hkv, S, D), computed in fp32.

    The last query attends to every key, so the causal mask is all ones and is skipped. fp32 also for a bf16
    model: torch's CPU flash kernel accumulates in fp32 either way, and its bf16 variant was 3-8x slower for one
    query (175 µs vs 75 µs at S = 130, 410 vs 53 µs at S = 260, one thread), which is 30 calls per step.
    """
    y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), enable_gqa=q.shape[1] != k.shape[1])
    return y.to(q.dtype)


def fast_decoder(model: nn.Module) -> nn.Module:
    """The fastest module with ``model``'s logits: a FastLlama where it applies, else ``model`` itself.

    Build it once the model has its final dtype and device; a later ``model.to(...)`` would leave it stale.
    """
    return FastLlama(model) if FastLlama.supports(model) else model
