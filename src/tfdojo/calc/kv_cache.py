"""Inference memory: the key/value cache (MHA, GQA, MQA; any dtype; int8/int4 with scales; paged; sliding window)
and the serving footprint, weights + cache.

    KV bytes = 2 (K and V) · L · Hkv · D · S_kept · B · bytes per element

Only the key/value heads count: grouped-query attention (Ainslie et al., 2023) divides the cache by Hq / Hkv,
which is why Llama-2-70B (80 layers, 8 KV heads of 128) holds 2.5 GiB at 8K context in fp16, not the 20 GiB
that 64 full heads would need -- let alone the 140 GB sometimes quoted.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from tfdojo.calc.describe import describe
from tfdojo.calc.memory import bytes_per_element, check_sizes, dtype_name, weight_bytes
from tfdojo.calc.result import Result, Step

QUANTIZED = ("int8", "int4")


def kv_cache_bytes(
    config: Any,
    seq_len: int,
    batch: int = 1,
    dtype: str | torch.dtype = "float16",
    *,
    block_size: int | None = None,
    window: int | None = None,
    group_size: int | None = None,
    scale_dtype: str | torch.dtype = "float16",
    zero_point: bool = False,
) -> Result:
    """Bytes of the key/value cache for ``batch`` sequences of ``seq_len`` tokens.

    ``window`` (default: the config's sliding window) caps the positions kept; ``block_size`` rounds them up to
    whole pages (vLLM's paged attention; Kwon et al., 2023); for int8/int4, each ``group_size`` values (default
    one head vector, D) share a ``scale_dtype`` scale, plus a zero point when ``zero_point``.
    """
    check_sizes(seq_len=seq_len, batch=batch)
    a = describe(config)
    a.require_one_stack("kv_cache_bytes")
    name = dtype_name(dtype)
    per = bytes_per_element(name)
    window = a.sliding_window if window is None else window
    if window is not None:
        check_sizes(window=window)
    if block_size is not None:
        check_sizes(block_size=block_size)
    kept = min(seq_len, window) if window is not None else seq_len
    pages = math.ceil(kept / block_size) if block_size else None
    slots = pages * block_size if block_size else kept
    values = 2 * a.n_layers * a.n_kv_heads * a.head_dim * slots * batch
    steps = [
        Step("positions kept", "min(S, window)", f"min({seq_len:,}, {window:,})", kept, "tokens")
        if window is not None
        else Step("positions kept", "S", f"{seq_len:,}", kept, "tokens")
    ]
    if block_size:
        steps.append(
            Step("paged slots", "⌈kept ÷ block⌉ · block", f"⌈{kept:,} ÷ {block_size}⌉ · {block_size}", slots, "tokens")
        )
    steps.append(
        Step(
            "cached values",
            "2 · L · Hkv · D · slots · B",
            f"2 · {a.n_layers} · {a.n_kv_heads} · {a.head_dim} · {slots:,} · {batch}",
            values,
            "elements",
        )
    )
    parts = {"keys and values": values * per}
    steps.append(
        Step(
            "keys and values",
            f"elements × {per:g} bytes ({name})",
            f"{values:,} × {per:g}",
            parts["keys and values"],
            "bytes",
        )
    )
    assumptions = [f"keys and values stored at {name}", "queries are not cached; each layer keeps its own K and V"]
    if name in QUANTIZED:
        group = group_size or a.head_dim
        check_sizes(group_size=group)
        scale_bytes = bytes_per_element(scale_dtype) * (2 if zero_point else 1)
        parts["scales"] = math.ceil(values / group) * scale_bytes
        steps.append(
            Step(
                "quantization scales",
                "⌈elements ÷ group⌉ × scale bytes" + (" (scale + zero point)" if zero_point else ""),
                f"⌈{values:,} ÷ {group}⌉ × {scale_bytes:g}",
                parts["scales"],
                "bytes",
            )
        )
        assumptions.append(
            f"one {dtype_name(scale_dtype)} scale per {group} values" + (" plus a zero point" if zero_point else "")
        )
    if block_size:
        assumptions.append("every sequence rounds up to whole pages; the page table itself is not counted")
    value = sum(parts.values())
    steps.append(Step("KV cache", " + ".join(parts), " + ".join(f"{v:,.0f}" for v in parts.values()), value, "bytes"))
    return Result(f"KV cache at S={seq_len:,}, B={batch}", value, "bytes", tuple(steps), tuple(assumptions), parts)


def inference_memory(
    config: Any,
    seq_len: int,
    batch: int = 1,
    *,
    weight_dtype: str | torch.dtype = "bfloat16",
    kv_dtype: str | torch.dtype = "bfloat16",
    **cache_options: Any,
) -> Result:
    """Serving footprint: weights at a dtype or quantization plus the KV cache of ``batch`` × ``seq_len``."""
    weights = weight_bytes(config, weight_dtype)
    cache = kv_cache_bytes(config, seq_len, batch, kv_dtype, **cache_options)
    logits = 4.0 * batch * describe(config).vocab_size  # one fp32 row per sequence while sampling
    parts = {"weights": weights.value, "kv cache": cache.value, "logits": logits}
    value = sum(parts.values())
    steps = (
        *weights.steps,
        *cache.steps,
        Step(
            "logits of the next token",
            "4 · B · V (fp32)",
            f"4 · {batch} · {describe(config).vocab_size:,}",
            logits,
            "bytes",
        ),
        Step("total", "weights + KV cache + logits", " + ".join(f"{v:,.0f}" for v in parts.values()), value, "bytes"),
    )
    assumptions = (
        *weights.assumptions,
        *cache.assumptions,
        "decode-time activations (a few B·d vectors per layer) and allocator slack are not counted",
    )
    return Result("inference memory", value, "bytes", steps, assumptions, parts)
