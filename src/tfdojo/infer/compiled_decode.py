"""A decode step compiled whole with ``torch.compile``: one graph for the 30 layers of a one-token step.

Eager PyTorch pays ~5-15 µs of dispatch per operator, ~20 operators per layer: with int4 weights that overhead is
as large as the matrix products themselves. Inductor fuses the elementwise work (norms, RoPE, SiLU, residuals)
into generated C++ and calls the int kernels directly, as gpt-fast does on GPUs. What makes one graph serve every
step without recompiling:

- the position is a tensor (it indexes the RoPE tables and the cache write), not a Python int;
- each layer's keys and values are written in place with ``index_copy_`` into the caller's static cache
  (``StaticKVCache``, a slab per layer), and attention masks the columns past the position (a mask rather than
  a slice ``[:n]``: a symbolic n recompiled whenever it met the cache's end);
- the cache length is a dynamic dimension, so a new prompt length or cache size reuses the graph. The compiled
  function lives on the decoder, so it is built once per model and kept across calls.

Only batch-1 steps without a padding mask take this path; prompts, batches and anything else run the eager
decoder. Where compiling fails (no C++ compiler, an unsupported torch) a one-line notice says so and the eager
decoder carries on.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.fast_llama import FastLlama, _rms_norm
from tfdojo.nn.kv import KVCache
from tfdojo.nn.rope import rotate_half


class CompiledDecoder(nn.Module):
    """Wraps a FastLlama (usually a QuantLlama): batch-1 decode steps through one compiled graph, the rest eager."""

    def __init__(self, decoder: FastLlama) -> None:
        super().__init__()
        self.decoder, self.config = decoder, decoder.config
        self.compiled: Any = None  # built on the first step; False once compiling has failed
        self.compile_s = 0.0  # seconds spent in the first compiled call (tracing + code generation)

    def applies(self, input_ids: Tensor, positions: Tensor | None, mask: Tensor | None, cache: Any) -> bool:
        """A batch-1, one-token step on a static cache, at the cache's own next position, RoPE tables precomputed."""
        if self.compiled is False or mask is not None or input_ids.shape != (1, 1):
            return False
        if not isinstance(cache, StaticKVCache) or getattr(self.decoder, "cos", None) is None:
            return False
        if any(getattr(layer, "window", None) is not None for layer in self.decoder.layers):
            return False  # a sliding window reads a different slice: the eager decoder handles it
        return positions is None or int(positions.reshape(-1)[0]) == cache.length

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
        """Logits as the wrapped decoder's; a compiled step where :meth:`applies`."""
        if not self.applies(input_ids, positions, attention_mask, cache):
            return self.decoder(
                input_ids, positions=positions, attention_mask=attention_mask, cache=cache, last_only=last_only
            )
        assert isinstance(cache, StaticKVCache)  # checked by applies
        past = cache.length
        if past + 1 > cache.max_len:
            return self.decoder(input_ids, cache=cache, last_only=last_only)  # the eager path raises the named error
        logits = self._compiled_step(input_ids, torch.tensor([past]), cache.k, cache.v)
        if logits is None:
            return self.decoder(input_ids, cache=cache, last_only=last_only)
        cache.advance(1)
        return logits

    def _compiled_step(self, token: Tensor, pos: Tensor, k: Tensor, v: Tensor) -> Tensor | None:
        first = self.compiled is None
        start = time.perf_counter()
        try:  # torch.compile fails at creation or, lazily, at the first call
            if first:
                print("tfdojo: compiling the decode step (once per model; --no-compile skips it)…", file=sys.stderr)
                self.compiled = torch.compile(self._step, fullgraph=True)
            for buffer in (k, v):
                torch._dynamo.mark_dynamic(buffer, 3)  # the cache length: one graph for every prompt and limit
            logits = self.compiled(token, pos, k, v)
        except Exception as e:  # any failure of the compiler stack: say so once, then run eagerly
            self.compiled = False
            print(f"tfdojo: compiled decode unavailable ({type(e).__name__}); decoding eagerly", file=sys.stderr)
            return None
        if first:
            self.compile_s = time.perf_counter() - start
        return logits

    def _step(self, token: Tensor, pos: Tensor, k_cache: Tensor, v_cache: Tensor) -> Tensor:
        """One token (1, 1) at position ``pos`` (1,) -> logits (1, 1, V); writes layer ℓ's k, v at ``pos``."""
        d = self.decoder
        cos, sin = d.cos[pos], d.sin[pos]  # (1, D): this position's rotation
        filled = (torch.arange(k_cache.shape[3]) <= pos)[None]  # (1, S): the columns written so far, this one too
        x = d.model.embed(token)  # (1, 1, dim)
        for i, layer in enumerate(d.layers):
            hq, hkv, hd = layer.n_heads, layer.n_kv_heads, layer.head_dim
            qkv = layer.qkv(_rms_norm(x, layer.norm1)).view(1, hq + 2 * hkv, 1, hd)  # (1, Hq+2Hkv, 1, D)
            qk = qkv[:, : hq + hkv]
            qk = qk * cos + rotate_half(qk) * sin
            k_cache[i].index_copy_(2, pos, qk[:, hq:])  # (1, Hkv, S, D) at column pos
            v_cache[i].index_copy_(2, pos, qkv[:, hq + hkv :])
            q, k, v = qk[:, :hq].float(), k_cache[i].float(), v_cache[i].float()  # fp32 as _one_query_attention
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=filled, enable_gqa=hq != hkv)  # (1, Hq, 1, D)
            x = x + layer.o(y.to(x.dtype).reshape(1, 1, hq * hd))
            gate, up = layer.gate_up(_rms_norm(x, layer.norm2)).chunk(2, dim=-1)  # (1, 1, hidden) each
            x = x + layer.down(F.silu(gate) * up)
        return d.lm_head(_rms_norm(x, d.model.norm))  # (1, 1, V)
