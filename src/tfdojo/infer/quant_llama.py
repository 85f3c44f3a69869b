"""A FastLlama whose decode-step products read int4 or int8 weights; prefill keeps fast float products.

Each matrix of :class:`~tfdojo.infer.fast_llama.FastLlama` (fused QKV, output, fused gate/up, down, the head)
becomes a pair: the int kernel for products of at most ``max_int_rows`` rows (decode steps, small batches), a
float matrix above that (a prompt), where the int kernels are compute-bound and slower. Which float matrix
depends on the CPU (30 layers of SmolLM2 matrices, 512 rows, 2 threads, docs/benchmarks.md):

    CPU                                  bf16 product   int4 / int8 kernel   fp32 oneDNN packed    prompt uses
    Zen 4 (AVX-512 with bf16)            fastest        ~2.8x slower         slower than bf16       bf16 packed
    AVX2 only (no bf16 arithmetic)       6.6x slower    2.8x / 3.2x slower   fastest                fp32 packed

so where oneDNN has no bf16 (``onednn_packs``) prompts run through an fp32 packed copy of each matrix (activations
converted to fp32 and back), at the price of that copy's memory (4 bytes per weight). The crossover in rows is
not measured yet: 16 rows is a conservative bound.

    quant   layers                                     head
    int4    group-wise int4 (g = 32): the GGUF's own    int8 per row
            Q4_1/Q4_0 codes where it has them, else
            quantized from the float weights
    int8    int8 per row                               int8 per row

The head stays int8 under int4: it is 49,152 rows of a tied embedding (a fifth of SmolLM2's weights) whose
errors reach the logits directly (an int4 head raised perplexity 5.9 %, docs/benchmarks.md). One-row products (a
batch-1 decode step) run our AVX2 kernels where they build (``tfdojo.infer.gemv_kernel``), else torch's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.errors import ConfigError, UnsupportedModelError
from tfdojo.infer import gemv_kernel
from tfdojo.infer.compiled_decode import CompiledDecoder
from tfdojo.infer.fast_llama import FastLlama, _Matrix, onednn_packs
from tfdojo.infer.int_linear import ACTIVATION_DTYPE, Int4Linear, Int8Linear, int_kernels_available
from tfdojo.infer.native_step import NativeDecoder, native_supported
from tfdojo.infer.quant import Int4Codes, quantize_int4, quantize_int8, stack_rows
from tfdojo.models.llama import Llama

QUANT_MODES = ("int4", "int8")
INT4_GROUP = 32
# Products of at most this many rows use the int kernels; more rows use bf16 (a prompt).
MAX_INT_ROWS = 16


class _IntOrFloat:
    """One matrix held twice: int codes for few rows (memory-bound), bf16 for many (compute-bound)."""

    def __init__(self, integer: Callable[[Tensor], Tensor], floating: Callable[[Tensor], Tensor], max_rows: int):
        self.integer, self.floating, self.max_rows = integer, floating, max_rows

    def __call__(self, x: Tensor) -> Tensor:
        rows = x.numel() // x.shape[-1]
        return self.integer(x) if rows <= self.max_rows else self.floating(x)


class _Fp32Products:
    """A bf16 matrix's products computed in fp32 through oneDNN's packed layout, for CPUs without bf16 arithmetic."""

    def __init__(self, weight: Tensor, bias: Tensor | None) -> None:
        self.weight = weight.detach().float()  # (out, in)
        self.bias = None if bias is None else bias.detach().float()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight, 1) if onednn_packs(torch.float32) else None
        if self.packed is not None:
            self.weight = None  # the packed copy is the only fp32 one kept

    def __call__(self, x: Tensor) -> Tensor:
        if self.packed is not None:
            y = torch.ops.mkldnn._linear_pointwise(x.float(), self.packed, self.bias, "none", [], "")
        else:
            y = F.linear(x.float(), self.weight, self.bias)
        return y.to(x.dtype)


def prompt_products(matrix: _Matrix) -> Callable[[Tensor], Tensor]:
    """The float products for many rows: the bf16 matrix where oneDNN has bf16, else an fp32 packed copy."""
    return matrix if onednn_packs(ACTIVATION_DTYPE) else _Fp32Products(matrix.weight, matrix.bias)


class QuantLlama(FastLlama):
    """FastLlama with weight-only int4 or int8 products for decode steps; same forward and cache interface.

    ``int4_codes`` maps parameter names (``layers.3.attn.q_proj.weight``) to codes taken from the checkpoint
    (GGUF Q4_1/Q4_0); matrices without them are quantized from the model's weights.
    """

    def __init__(
        self,
        model: Llama,
        quant: str,
        *,
        int4_codes: Mapping[str, Int4Codes] | None = None,
        max_int_rows: int = MAX_INT_ROWS,
    ) -> None:
        if quant not in QUANT_MODES:
            raise ConfigError(f"quant must be one of {QUANT_MODES} or None, got {quant!r}")
        if model.embed.weight.dtype != ACTIVATION_DTYPE:
            raise ConfigError(
                f"quantized decoding runs bf16 activations; load the model in torch.bfloat16, not "
                f"{model.embed.weight.dtype}"
            )
        if not int_kernels_available():
            raise ConfigError("this torch build lacks the CPU int4/int8 kernels; load without quant or upgrade torch")
        super().__init__(model)
        self.quant = quant
        codes = dict(int4_codes or {})
        for i, layer in enumerate(self.layers):
            attn, ffn = f"layers.{i}.attn.", f"layers.{i}.ffn."
            groups = {
                "qkv": [attn + "q_proj.weight", attn + "k_proj.weight", attn + "v_proj.weight"],
                "o": [attn + "o_proj.weight"],
                "gate_up": [ffn + "gate.weight", ffn + "up.weight"],
                "down": [ffn + "down.weight"],
            }
            for field, names in groups.items():
                matrix = getattr(layer, field)
                from_file = [codes[n] for n in names] if all(n in codes for n in names) else None
                integer = self._integer(matrix.weight, matrix.bias, from_file)
                setattr(layer, field, _IntOrFloat(integer, prompt_products(matrix), max_int_rows))
            layer.attend_kernel = gemv_kernel.library() is not None and layer.head_dim % 8 == 0 and layer.window is None
        head = self.lm_head
        self.lm_head = _IntOrFloat(Int8Linear(quantize_int8(head.weight)), prompt_products(head), max_int_rows)

    def _integer(self, weight: Tensor, bias: Tensor | None, from_file: list[Int4Codes] | None) -> Callable:
        if self.quant == "int8":
            return Int8Linear(quantize_int8(weight), bias)
        codes = stack_rows(from_file) if from_file else quantize_int4(weight, INT4_GROUP)
        return Int4Linear(codes, bias)


def quantized_decoder(
    model: Llama, quant: str, *, int4_codes: Mapping[str, Int4Codes] | None = None, compile: bool = False
) -> nn.Module:
    """The decoder for ``tfdojo.load(..., quant=...)``; named errors otherwise.

    Batch-1 decode steps run as one C call (``native_step``) where our kernels are built, or as a ``torch.compile``
    graph if ``compile`` is asked (slower than the C step; there to study what compiling buys), else eagerly.
    """
    if not QuantLlama.supports(model):
        raise UnsupportedModelError(
            f"quant covers Llama-family models (Llama, Mistral, Qwen2, SmolLM2); this is a {type(model).__name__} "
            f"with other parts: load it without quant"
        )
    decoder = QuantLlama(model, quant, int4_codes=int4_codes)
    if compile:
        return CompiledDecoder(decoder)
    return NativeDecoder(decoder) if native_supported(decoder) else decoder


def quantize_language_model(loaded: Any, quant: str, *, compile: bool = False) -> Any:
    """A loaded LanguageModel with its decoder swapped for a QuantLlama quantized from its float weights."""
    from tfdojo.infer.language_model import LanguageModel

    if not isinstance(loaded, LanguageModel):
        raise ConfigError(f"quant applies to language models; this folder holds a {type(loaded).__name__}")
    loaded.decoder = quantized_decoder(loaded.model, quant, compile=compile)
    return loaded
