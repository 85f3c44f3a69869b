"""An inference-time re-layout of a Llama for fast decoding on CPU, beside the readable eager model.

A decode step multiplies one token's vector by every weight matrix, so it is bound by memory traffic and by
the fixed cost of each operator call (~5-15 µs in eager PyTorch). The eager model spends ~45 calls per layer;
this one spends ~20, by

- fusing the Q, K and V projections into one matrix, and the SwiGLU gate and up projections into another
  (the original parameters become row views of the fused ones, so no weight is stored twice);
- rotating queries and keys together with cos/sin tables computed once for every position;
- calling the fused ``F.rms_norm``.

The arithmetic is the eager model's; ``tests/infer/test_generate_fast.py`` holds the two equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.models.decoding import decoder_masks
from tfdojo.models.llama import Llama
from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.ffn import SwiGLU
from tfdojo.nn.kv import KVCache
from tfdojo.nn.norms import RMSNorm
from tfdojo.nn.rope import inverse_frequencies, rotate_half
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


def _rms_norm(x: Tensor, norm: RMSNorm) -> Tensor:
    """RMSNorm's arithmetic (statistics in fp32, weight applied in the input dtype) through the fused kernel."""
    return norm.weight * F.rms_norm(x.float(), x.shape[-1:], eps=norm.eps).to(x.dtype)


class _FastLayer:
    """One decoder block's weights, laid out for few and large matrix products."""

    def __init__(self, block: nn.Module) -> None:
        attn, ffn = block.attn, block.ffn
        self.n_heads, self.n_kv_heads, self.head_dim = attn.n_heads, attn.n_kv_heads, attn.head_dim
        self.backend = attn.backend
        self.wqkv = _fuse_rows([attn.q_proj, attn.k_proj, attn.v_proj])  # (Hq·D + 2·Hkv·D, dim)
        biases = [attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias]
        self.bqkv = torch.cat([b.detach() for b in biases]) if biases[0] is not None else None
        self.wo = attn.o_proj.weight
        self.w_gate_up = _fuse_rows([ffn.gate, ffn.up])  # (2·hidden, dim)
        self.w_down = ffn.down.weight
        self.norm1, self.norm2 = block.norm1, block.norm2


class FastLlama(nn.Module):
    """Same forward signature and logits as :class:`~tfdojo.models.llama.Llama`, with fewer, fused operations."""

    def __init__(self, model: Llama) -> None:
        super().__init__()
        if not self.supports(model):
            raise ConfigError("FastLlama covers Llama blocks with a SwiGLU FFN and full attention; use the model")
        c = model.config
        self.config, self.model = c, model  # the eager model keeps the parameters (now views of fused weights)
        self.layers = [_FastLayer(block) for block in model.layers]
        positions = torch.arange(c.max_seq_len, dtype=torch.float32)
        angles = positions[:, None] * inverse_frequencies(c.head_dim, c.rope_theta)  # (max_seq_len, D/2)
        angles = torch.cat((angles, angles), dim=-1)  # (max_seq_len, D)
        dtype = model.embed.weight.dtype
        self.cos, self.sin = angles.cos().to(dtype), angles.sin().to(dtype)

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """True for a Llama whose blocks are exactly the standard parts (not Mixtral's experts, no window)."""
        return (
            isinstance(model, Llama)
            and model.config.sliding_window is None
            and all(
                type(b.ffn) is SwiGLU and type(b.attn) is Attention and type(b.norm1) is type(b.norm2) is RMSNorm
                for b in model.layers
            )
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
        cos, sin = self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1)  # (B|1, 1, T, D)
        x = self.model.embed(input_ids)  # (B, T, dim)
        for i, layer in enumerate(self.layers):
            x = x + self._attention(layer, _rms_norm(x, layer.norm1), cos, sin, mask, cache, i)
            gate, up = F.linear(_rms_norm(x, layer.norm2), layer.w_gate_up).chunk(2, dim=-1)  # (B, T, hidden) each
            x = x + F.linear(F.silu(gate) * up, layer.w_down)
        if cache is not None:
            cache.advance(t)
        if last_only:
            x = x[:, -1:]
        return self.model.lm_head(_rms_norm(x, self.model.norm))

    @staticmethod
    def _attention(
        layer: _FastLayer, h: Tensor, cos: Tensor, sin: Tensor, mask: Tensor | None, cache: KVCache | None, i: int
    ) -> Tensor:
        b, t, _ = h.shape
        hq, hkv, d = layer.n_heads, layer.n_kv_heads, layer.head_dim
        qkv = F.linear(h, layer.wqkv, layer.bqkv).view(b, t, hq + 2 * hkv, d).transpose(1, 2)  # (B, Hq+2Hkv, T, D)
        qk = qkv[:, : hq + hkv]  # (B, Hq+Hkv, T, D): queries and keys share one rotation
        qk = qk * cos + rotate_half(qk) * sin
        q, k, v = qk[:, :hq], qk[:, hq:], qkv[:, hq + hkv :]  # (B, Hq|Hkv|Hkv, T, D)
        if cache is not None:
            k, v = cache.update(i, k, v)  # (B, Hkv, S, D)
        y = scaled_dot_product(q, k, v, causal=True, mask=mask, backend=layer.backend)  # (B, Hq, T, D)
        return F.linear(y.transpose(1, 2).reshape(b, t, hq * d), layer.wo)  # (B, T, dim)


def fast_decoder(model: nn.Module) -> nn.Module:
    """The fastest module with ``model``'s logits: a FastLlama where it applies, else ``model`` itself.

    Build it once the model has its final dtype and device; a later ``model.to(...)`` would leave it stale.
    """
    return FastLlama(model) if FastLlama.supports(model) else model
