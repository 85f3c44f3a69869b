"""A decode step compiled whole with ``torch.compile``: one graph for the 30 layers of a one-token step.

Eager PyTorch pays ~5-15 µs of dispatch per operator, ~20 operators per layer: with int4 weights that overhead is
as large as the matrix products themselves. Inductor fuses the elementwise work (norms, RoPE, SiLU, residuals)
into generated C++ and calls the int kernels directly, as gpt-fast does on GPUs. What makes one graph serve every
step without recompiling, and keeps it free of copies:

- the position is a tensor (it indexes the RoPE tables), not a Python int;
- the graph does not write the cache. It reads the filled part of every layer's keys and values (a view of the
  caller's ``StaticKVCache``), attends over those and the new token's own key and value, and returns the new keys
  and values of all layers stacked; one eager copy then writes them at the position. (The first version wrote
  each layer with ``index_copy_`` inside the graph and masked the unfilled columns: functionalisation copied each
  layer's whole slab around every write, and the compiled step ran at 0.85x eager.)
- the filled length and the cache size are dynamic dimensions. The cache is passed whole and cut to the filled
  length inside the graph, the length carried by the size of an empty tensor, so neither a new prompt length nor
  a new ``max_len`` (which sets the cache's strides) recompiles. The compiled function lives on the decoder: it is
  built once per model and kept across calls.
- every layer's weights of one kind are stacked (``layer_stack``): the graph has ~25 inputs instead of ~430, which
  dynamo fetched and checked on every call (~0.45 ms a step). Inductor's size and alignment asserts, debugging
  aids at ~1 µs per tensor, are off.
- attention is our AVX2 one-query kernel (``gemv_kernel.attend_one``: the bf16 cache read in place, fp32 inside,
  24 µs against 99 µs for cat + fp32 + SDPA at 192 positions). Where our kernels are not built: two batched
  products with the query heads grouped by their key/value head (GQA without repeating the cache) and a softmax
  between, in fp32 as the eager decoder's, still faster than SDPA's flash kernel, whose setup dominates for one query.

Only batch-1 steps without a padding mask, after at least two cached positions, take this path (dynamic sizes
start at 2); prompts, batches and anything else run the eager decoder. Where compiling fails (no C++ compiler,
an unsupported torch) a one-line notice says so and the eager decoder carries on.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tfdojo.infer import gemv_kernel
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.fast_llama import FastLlama, _rms_norm, rms_norm_with
from tfdojo.infer.layer_stack import StackedNorms, StackedProducts, stackable
from tfdojo.infer.step_wrapper import StepWrapper
from tfdojo.nn.rope import rotate_half

# inductor's run-time checks of sizes, strides and alignment: debugging aids, ~1 µs per tensor, ~430 per step
FIELDS = ("qkv", "o", "gate_up", "down")  # a layer's matrices (FastLlama's fused layout)
NO_RUNTIME_ASSERTS = {"size_asserts": False, "alignment_asserts": False, "scalar_asserts": False}


class CompiledDecoder(StepWrapper):
    """Wraps a FastLlama (usually a QuantLlama): batch-1 decode steps through one compiled graph, the rest eager."""

    def __init__(self, decoder: FastLlama) -> None:
        super().__init__(decoder)
        self.compiled: Any = None  # built on the first step; False once compiling has failed
        layers = decoder.layers
        bf16 = decoder.model.embed.weight.dtype == torch.bfloat16
        self.attention_kernel = (  # our one-query attention (gemv_kernel.attend_one) where it is built
            gemv_kernel.library() is not None and bf16 and layers[0].head_dim % 8 == 0
        )
        self.norm1 = StackedNorms([layer.norm1 for layer in layers])  # (L, dim) each
        self.norm2 = StackedNorms([layer.norm2 for layer in layers])
        matrices = {field: [getattr(getattr(layer, field), "integer", None) for layer in layers] for field in FIELDS}
        self.stacks = (  # the int products stacked (L, ...), or None: each layer's own object is called
            {field: StackedProducts(linears) for field, linears in matrices.items()}
            if all(stackable(linears) for linears in matrices.values())
            else None
        )
        self.compile_s = 0.0  # seconds spent in the first compiled call (tracing + code generation)

    def applies(self, input_ids: Tensor, positions: Tensor | None, mask: Tensor | None, cache: Any) -> bool:
        """A batch-1, one-token step on a static cache holding ≥ 2 positions, at its own next position, RoPE tables
        precomputed."""
        if self.compiled is False or mask is not None or input_ids.shape != (1, 1):
            return False
        if not isinstance(cache, StaticKVCache) or cache.length < 2 or getattr(self.decoder, "cos", None) is None:
            return False
        if any(getattr(layer, "window", None) is not None for layer in self.decoder.layers):
            return False  # a sliding window reads a different slice: the eager decoder handles it
        return positions is None or int(positions.reshape(-1)[0]) == cache.length

    def step(self, input_ids: Tensor, cache: StaticKVCache) -> Tensor | None:
        """One token's logits (1, 1, V) through the compiled graph; None where compiling failed or the cache is full
        (the eager decoder then runs it, or raises the named error)."""
        past = cache.length
        if past + 1 > cache.max_len:
            return None
        out = self._compiled_step(input_ids, torch.tensor([past]), cache.k, cache.v, torch.empty(past, 0))
        if out is None:
            return None
        logits, new_k, new_v = out
        cache.k[:, :, :, past : past + 1] = new_k  # (L, 1, Hkv, 1, D): every layer's key at this position
        cache.v[:, :, :, past : past + 1] = new_v
        cache.advance(1)
        return logits

    def _compiled_step(
        self, token: Tensor, pos: Tensor, k: Tensor, v: Tensor, filled: Tensor
    ) -> tuple[Tensor, Tensor, Tensor] | None:
        first = self.compiled is None
        start = time.perf_counter()
        try:  # torch.compile fails at creation or, lazily, at the first call
            if first:
                print("tfdojo: compiling the decode step (once per model; --no-compile skips it)…", file=sys.stderr)
                self.compiled = torch.compile(self._step, fullgraph=True, options=NO_RUNTIME_ASSERTS)
            for buffer in (k, v):
                torch._dynamo.mark_dynamic(buffer, 3)  # the cache size: one graph for every max_len
            torch._dynamo.mark_dynamic(filled, 0)  # the filled length: one graph for every position
            out = self.compiled(token, pos, k, v, filled)
        except Exception as e:  # any failure of the compiler stack: say so once, then run eagerly
            self.compiled = False
            print(f"tfdojo: compiled decode unavailable ({type(e).__name__}); decoding eagerly", file=sys.stderr)
            return None
        if first:
            self.compile_s = time.perf_counter() - start
        return out

    def _step(
        self, token: Tensor, pos: Tensor, k_cache: Tensor, v_cache: Tensor, filled: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One token (1, 1) at ``pos`` (1,) over ``filled.shape[0]`` cached positions -> logits (1, 1, V) and the
        new keys and values (L, 1, Hkv, 1, D) for the caller to store; the caches (L, 1, Hkv, S, D) are only read."""
        d, n = self.decoder, filled.shape[0]
        cos, sin = d.cos[pos], d.sin[pos]  # (1, D): this position's rotation
        x = d.model.embed(token)  # (1, 1, dim)
        new_k, new_v = [], []
        for i, layer in enumerate(d.layers):
            hq, hkv, hd = layer.n_heads, layer.n_kv_heads, layer.head_dim
            h = rms_norm_with(x, self.norm1.weight[i], self.norm1.eps)
            qkv = self._product("qkv", i, h).view(1, hq + 2 * hkv, 1, hd)  # (1, Hq+2Hkv, 1, D)
            qk = qkv[:, : hq + hkv]
            qk = qk * cos + rotate_half(qk) * sin
            k1, v1 = qk[:, hq:], qkv[:, hq + hkv :]  # (1, Hkv, 1, D) each
            new_k.append(k1)
            new_v.append(v1)
            y = self._attend(qk[:, :hq], k_cache, v_cache, k1, v1, i, n)  # (1, 1, Hq·D), heads in order
            x = x + self._product("o", i, y)
            h = rms_norm_with(x, self.norm2.weight[i], self.norm2.eps)
            gate, up = self._product("gate_up", i, h).chunk(2, dim=-1)  # (1, 1, hidden) each
            x = x + self._product("down", i, F.silu(gate) * up)
        logits = d.lm_head(_rms_norm(x, d.model.norm))  # (1, 1, V)
        return logits, torch.stack(new_k), torch.stack(new_v)  # (L, 1, Hkv, 1, D) each

    def _attend(self, q: Tensor, k_cache: Tensor, v_cache: Tensor, k1: Tensor, v1: Tensor, i: int, n: int) -> Tensor:
        """Layer i's query q (1, Hq, 1, D) over its n cached keys and values and the new k1, v1 (1, Hkv, 1, D)."""
        hq, hkv, hd = q.shape[1], k1.shape[1], q.shape[3]
        if self.attention_kernel:  # our AVX2 kernel reads the bf16 cache in place
            return torch.ops.tfdojo.attend_one(q, k_cache, v_cache, k1, v1, i, n).view(1, 1, hq * hd)
        k = torch.cat([k_cache[i, :, :, :n], k1], dim=2).float().view(hkv, n + 1, hd)  # (Hkv, n+1, D)
        v = torch.cat([v_cache[i, :, :, :n], v1], dim=2).float().view(hkv, n + 1, hd)
        q = q.float().view(hkv, hq // hkv, hd)  # (Hkv, group, D): the query heads of each kv head
        p = (q @ k.transpose(1, 2) * hd**-0.5).softmax(dim=-1)  # (Hkv, group, n+1)
        return (p @ v).view(1, 1, hq * hd).to(k1.dtype)

    def _product(self, field: str, i: int, x: Tensor) -> Tensor:
        """Layer i's product ``field`` of one row x (1, 1, in) -> (1, 1, out): stacked weights where they are."""
        if self.stacks is not None:
            return self.stacks[field](i, x)
        return getattr(self.decoder.layers[i], field)(x)
