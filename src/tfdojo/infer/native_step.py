"""A batch-1 decode step in one C call (``decode_step_avx2.c``): every layer and the head of a QuantLlama.

At batch 1 a decode step is a chain of small operations around the matrix products. Called from Python they
cost more than the products themselves: SmolLM2's int4 products take ~10 ms a token, and the eager decoder
spends ~12 ms more around them (~20 torch calls a layer), a ``torch.compile`` graph still ~5 ms (its Python
wrapper, the operators' Python bodies, the guards). llama.cpp avoids this by running the whole step in C; so
does this module, with the same kernels as the eager decoder (``gemv_avx2.c``) and the same bf16 roundings, so
its logits are the eager decoder's up to fp32 summation order (``tests/infer/test_native_step.py``). Its products
and attention are shared out over torch's thread count, or one thread where that is faster (``ThreadChoice``).

Python describes the model once: every layer's weights of one kind stacked (L, ...) (``layer_stack``, the layers
re-pointed at views: nothing is held twice), their addresses in a ``ctypes`` structure. Each step then passes a
token, its position and the cache's buffers; the C code writes the new keys and values into the cache in place.

It applies to batch-1, one-token steps on a bf16 ``StaticKVCache`` at its next position, with our kernels built
and every matrix on them, RoPE tables precomputed and no sliding window; everything else (prompts, batches,
padding masks, other caches) runs the wrapped decoder.
"""

from __future__ import annotations

import ctypes
import time
from typing import Any

import torch
from torch import Tensor, nn

from tfdojo.infer import gemv_kernel
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.fast_llama import FastLlama
from tfdojo.infer.int_linear import Int4Linear, Int8Linear
from tfdojo.infer.layer_stack import StackedNorms, StackedProducts, stackable
from tfdojo.infer.step_wrapper import StepWrapper

FIELDS = ("qkv", "o", "gate_up", "down")  # a layer's matrices (FastLlama's fused layout), in the C struct's order
FORMATS = {Int4Linear: 4, Int8Linear: 8}  # TFD_Q4, TFD_Q8 in decode_step_avx2.c


class _Matrix(ctypes.Structure):
    """``struct tfd_matrix``: one kind of matrix stacked over layers."""

    _fields_ = [
        ("format", ctypes.c_int),
        ("rows", ctypes.c_int),
        ("cols", ctypes.c_int),
        ("codes", ctypes.c_void_p),
        ("scale", ctypes.c_void_p),
        ("low", ctypes.c_void_p),
        ("bias", ctypes.c_void_p),
    ]


class _Decoder(ctypes.Structure):
    """``struct tfd_decoder``: sizes and the addresses of every weight."""

    _fields_ = [
        *((name, ctypes.c_int) for name in ("layers", "dim", "heads", "kv_heads", "head_dim", "hidden")),
        ("eps", ctypes.c_float),
        ("final_eps", ctypes.c_float),
        *((name, ctypes.c_void_p) for name in ("embed", "norm1", "norm2", "final_norm", "cos", "sin")),
        *((name, _Matrix) for name in (*FIELDS, "head")),
    ]


def _address(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _matrix(linear: Int4Linear | Int8Linear, parts: tuple[Tensor, ...], bias: Tensor | None) -> _Matrix:
    """The C description of ``linear``'s one-row product reading ``parts`` (its own, or stacks (L, ...) of them)."""
    int4 = isinstance(linear, Int4Linear)
    low = parts[2] if int4 else None  # int4: (packed, scale, low); int8: (codes, scale)
    cols = parts[0].shape[-1] * (2 if int4 else 1)  # int4: two codes a byte
    rows, kind = linear.out_features, FORMATS[type(linear)]
    return _Matrix(kind, rows, cols, parts[0].data_ptr(), parts[1].data_ptr(), _address(low), _address(bias))


class ThreadChoice:
    """Which thread count the next step runs on: torch's, or one where one is faster (timed, steps interleaved).

    Split over two threads a SmolLM2 step ran 1.6x faster on a quiet 2-core machine (7.5 against 12.5 ms); with
    another job on the cores, anywhere from as fast as one thread to 2.5x slower (a worker the OS has not scheduled
    holds up its chunk). So both are timed and the faster one is used, with a few steps of the other in every
    ``PROBE_EVERY`` to notice when the load changes. The logits do not depend on
    the choice (``decode_step_avx2.c`` splits rows and heads, never a sum).
    """

    PROBE_EVERY, PROBES, SAMPLES = 128, 2, 2  # probing the slower costs ~2 % at 2.5x slower
    SMOOTHING = 0.25  # weight of a new step time in the running mean

    def __init__(self) -> None:
        self.mean: dict[int, float] = {}
        self.count: dict[int, int] = {}
        self.steps = 0

    def pick(self, available: int) -> int:
        """The thread count for the next step, given torch's."""
        if available <= 1:
            return 1
        options = (available, 1)
        for option in options:
            if self.count.get(option, 0) < self.SAMPLES:
                return option
        self.steps += 1
        best, other = sorted(options, key=self.mean.__getitem__)
        return other if self.steps % self.PROBE_EVERY < self.PROBES else best

    def record(self, threads: int, seconds: float) -> None:
        """A step's time on ``threads`` threads."""
        old = self.mean.get(threads)
        self.mean[threads] = seconds if old is None else old + self.SMOOTHING * (seconds - old)
        self.count[threads] = self.count.get(threads, 0) + 1


def native_supported(decoder: nn.Module) -> bool:
    """Whether ``decoder`` (a QuantLlama) can decode natively: our kernels built and under every matrix, RoPE tables
    precomputed, no sliding window, head size a multiple of 8 (the attention kernel's)."""
    if not isinstance(decoder, FastLlama) or gemv_kernel.library() is None or decoder.cos is None:
        return False
    layers = decoder.layers
    if any(layer.window is not None or layer.head_dim % 8 for layer in layers):
        return False
    if len({(layer.norm1.eps, layer.norm2.eps) for layer in layers}) != 1 or layers[0].norm1.eps != layers[0].norm2.eps:
        return False
    matrices = [[getattr(getattr(layer, field), "integer", None) for layer in layers] for field in FIELDS]
    head = getattr(decoder.lm_head, "integer", None)
    ours = all(stackable(linears) and linears[0].one_row is not None for linears in matrices)
    return ours and isinstance(head, Int8Linear) and head.one_row is not None and head.bias is None


class NativeDecoder(StepWrapper):
    """Wraps a QuantLlama: batch-1 decode steps in one C call (``tfd_decode_step``), everything else by the wrapped
    decoder. Build it with :func:`native_supported` true."""

    def __init__(self, decoder: FastLlama) -> None:
        if not native_supported(decoder):
            raise ValueError("this decoder cannot decode natively (see native_supported)")
        super().__init__(decoder)
        self.library = gemv_kernel.library()
        layers, model = decoder.layers, decoder.model
        self.norm1 = StackedNorms([layer.norm1 for layer in layers])  # (L, dim) each
        self.norm2 = StackedNorms([layer.norm2 for layer in layers])
        linears = {field: [getattr(layer, field).integer for layer in layers] for field in FIELDS}
        self.stacks = {field: StackedProducts(group) for field, group in linears.items()}
        head = decoder.lm_head.integer
        first = layers[0]
        self.vocab, self.max_positions = model.embed.weight.shape[0], decoder.cos.shape[0]
        self.spec = _Decoder(
            layers=len(layers),
            dim=model.embed.weight.shape[1],
            heads=first.n_heads,
            kv_heads=first.n_kv_heads,
            head_dim=first.head_dim,
            hidden=linears["gate_up"][0].out_features // 2,
            eps=first.norm1.eps,
            final_eps=model.norm.eps,
            embed=model.embed.weight.data_ptr(),
            norm1=self.norm1.weight.data_ptr(),
            norm2=self.norm2.weight.data_ptr(),
            final_norm=model.norm.weight.data_ptr(),
            cos=decoder.cos.data_ptr(),
            sin=decoder.sin.data_ptr(),
            **{field: _matrix(linears[field][0], stack.parts, stack.bias) for field, stack in self.stacks.items()},
            head=_matrix(head, head.one_row, None),
        )
        self.threads = ThreadChoice()
        # the addresses above point into these: they must live as long as this object
        self._keep = (model.embed.weight, model.norm.weight, decoder.cos, decoder.sin, head.one_row)

    def applies(self, input_ids: Tensor, positions: Tensor | None, mask: Tensor | None, cache: Any) -> bool:
        """A batch-1, one-token step with a known token on a bf16 static cache of this model's shape with room, at its
        next position."""
        if mask is not None or input_ids.shape != (1, 1) or not isinstance(cache, StaticKVCache):
            return False
        k, spec = cache.k, self.spec
        if k.dtype != torch.bfloat16 or k.stride(-1) != 1 or k.stride(-2) != k.shape[-1]:
            return False
        if (k.shape[0], k.shape[1], k.shape[2], k.shape[4]) != (spec.layers, 1, spec.kv_heads, spec.head_dim):
            return False  # another model's cache: the C code would write past it; eager names the mismatch
        past = cache.length
        if past + 1 > cache.max_len or past >= self.max_positions or not 0 <= int(input_ids[0, 0]) < self.vocab:
            return False  # the wrapped decoder raises the named error
        return positions is None or int(positions.reshape(-1)[0]) == past

    def step(self, input_ids: Tensor, cache: StaticKVCache) -> Tensor:
        """One token's logits (1, 1, V) in one C call; its key and value stored in the cache."""
        logits = torch.empty(1, 1, self.vocab, dtype=torch.bfloat16)
        k, v = cache.k, cache.v
        threads = self.threads.pick(torch.get_num_threads())
        start = time.perf_counter()
        status = self.library.tfd_decode_step(
            ctypes.byref(self.spec), int(input_ids[0, 0]), cache.length, k.data_ptr(), v.data_ptr(),
            k.stride(0), k.stride(2), threads, logits.data_ptr(),
        )  # fmt: skip
        self.threads.record(threads, time.perf_counter() - start)
        if status:
            raise MemoryError("the native decode step could not allocate its scratch memory")
        cache.advance(1)
        return logits
