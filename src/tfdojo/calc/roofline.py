"""Roofline (Williams et al., 2009): a step takes at least max(bytes ÷ bandwidth, FLOPs ÷ peak FLOP/s).

Decoding one token reads every weight and the whole KV cache to do ~2 FLOPs per weight: about 1 FLOP per
byte in 16-bit, far below any accelerator's ridge point (hundreds of FLOP/byte), so decode speed is
bandwidth ÷ bytes per step -- and batching B sequences shares the weight reads B ways. Prefill multiplies
each weight by all T prompt tokens at once and is compute-bound. ``measure()`` times this machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import torch

from tfdojo.calc.describe import describe
from tfdojo.calc.flops import flops_per_token
from tfdojo.calc.kv_cache import kv_cache_bytes
from tfdojo.calc.memory import bytes_per_element, check_sizes
from tfdojo.calc.params import embedding_params, param_count
from tfdojo.calc.result import Result, Step
from tfdojo.errors import ConfigError


def weights_read(config: Any, dtype: str | torch.dtype) -> Result:
    """Weight bytes one forward step reads: all but the embedding tables, of which it gathers a few rows only
    (a tied table is read whole, by the output head)."""
    a = describe(config)
    total = param_count(a).value
    gathered = embedding_params(a) - (a.vocab_size * a.dim if a.tied_embeddings else 0)
    per = bytes_per_element(dtype)
    value = (total - gathered) * per
    step = Step(
        "weights read", "(N − looked-up tables) × bytes", f"({total:,.0f} − {gathered:,}) × {per:g}", value, "bytes"
    )
    return Result("weight bytes read per step", value, "bytes", (step,))


def roofline(
    config: Any,
    seq_len: int,
    batch: int = 1,
    *,
    mode: Literal["decode", "prefill"] = "decode",
    bandwidth: float,
    peak_flops: float,
    weight_dtype: str | torch.dtype = "bfloat16",
    kv_dtype: str | torch.dtype = "bfloat16",
) -> Result:
    """Ceiling on tokens/s, tokens ÷ max(memory time, compute time): ``decode`` is one step of ``batch`` sequences
    at ``seq_len`` cached tokens (weights and cache read); ``prefill`` is ``batch`` prompts of ``seq_len`` tokens
    (weights read once, the cache written)."""
    if mode not in ("decode", "prefill"):
        raise ConfigError(f"unknown roofline mode {mode!r}; choose decode or prefill")
    check_sizes(bandwidth=bandwidth, peak_flops=peak_flops)
    tokens = batch if mode == "decode" else batch * seq_len
    weights = weights_read(config, weight_dtype).value
    cache = kv_cache_bytes(config, seq_len, batch, kv_dtype).value  # read whole by decode, written by prefill
    moved = weights + cache
    flops = tokens * flops_per_token(config, seq_len, mode).value
    memory_s, compute_s = moved / bandwidth, flops / peak_flops
    step_s = max(memory_s, compute_s)
    value = tokens / step_s
    bound = "memory" if memory_s >= compute_s else "compute"
    steps = (
        Step("bytes moved", "weights read + KV cache", f"{weights:.4g} + {cache:.4g}", moved, "bytes"),
        Step("FLOPs", f"tokens × {mode} FLOPs per token", f"{tokens:,} × {flops / tokens:.4g}", flops, "FLOP"),
        Step("memory time", "bytes ÷ bandwidth", f"{moved:.4g} ÷ {bandwidth:.4g}", memory_s, "s"),
        Step("compute time", "FLOPs ÷ peak", f"{flops:.4g} ÷ {peak_flops:.4g}", compute_s, "s"),
        Step("arithmetic intensity", "FLOPs ÷ bytes", f"{flops:.4g} ÷ {moved:.4g}", flops / moved, "FLOP/byte"),
        Step(
            "ridge point",
            "peak ÷ bandwidth",
            f"{peak_flops:.4g} ÷ {bandwidth:.4g}",
            peak_flops / bandwidth,
            "FLOP/byte",
        ),
        Step(
            f"ceiling ({bound}-bound)", "tokens ÷ max(memory, compute)", f"{tokens:,} ÷ {step_s:.4g}", value, "tokens/s"
        ),
    )
    assumptions = (
        "perfect overlap of memory traffic and compute; real kernels reach 60-90 % of either roof",
        "every matrix read once per step (a mixture of experts at small batch reads only the chosen experts)",
    )
    name = f"{mode} ceiling at S={seq_len:,}, B={batch}"
    return Result(name, value, "tokens/s", steps, assumptions, {"memory_s": memory_s, "compute_s": compute_s})


def decode_roofline(config: Any, context: int, batch: int = 1, **options: Any) -> Result:
    """Ceiling on decode tokens/s for ``batch`` sequences at ``context`` tokens (see :func:`roofline`)."""
    return roofline(config, context, batch, mode="decode", **options)


def prefill_roofline(config: Any, prompt_len: int, batch: int = 1, **options: Any) -> Result:
    """Ceiling on prefill tokens/s for ``batch`` prompts of ``prompt_len`` tokens (see :func:`roofline`)."""
    return roofline(config, prompt_len, batch, mode="prefill", **options)


@dataclass(frozen=True)
class Measured:
    """This machine's memory bandwidth (bytes/s) and matmul throughput (FLOP/s), each with its derivation."""

    bandwidth: Result
    matmul: Result


def _best_seconds(fn: Any, budget_s: float) -> tuple[float, int]:
    fn()  # warm-up: first-touch page faults and kernel selection are not the steady state
    best, runs, start = float("inf"), 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - start < budget_s:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        runs += 1
        if time.perf_counter() - start > 2 * budget_s:
            break
    return best, runs


def measure(copy_mib: int = 256, matmul_n: int = 1024, budget_s: float = 0.6) -> Measured:
    """Time a large tensor copy (read + write) and an fp32 n×n matmul; best of repeated runs, about 2 s in all."""
    check_sizes(copy_mib=copy_mib, matmul_n=matmul_n, budget_s=budget_s)
    src = torch.ones(copy_mib * 2**20 // 4)
    dst = torch.empty_like(src)
    copy_s, copies = _best_seconds(lambda: dst.copy_(src), budget_s)
    moved = 2 * src.nbytes  # every byte read once and written once
    bandwidth = moved / copy_s
    a, b = torch.randn(matmul_n, matmul_n), torch.randn(matmul_n, matmul_n)
    mm_s, mms = _best_seconds(lambda: torch.mm(a, b), budget_s)
    flops = 2 * matmul_n**3
    threads = f"{torch.get_num_threads()} threads"
    bw = Result(
        "measured memory bandwidth",
        bandwidth,
        "bytes/s",
        (
            Step(
                "copy",
                "2 × bytes ÷ best time",
                f"2 × {src.nbytes:,} ÷ {copy_s:.4g} (best of {copies})",
                bandwidth,
                "bytes/s",
            ),
        ),
        (f"{copy_mib} MiB fp32 copy on the CPU, {threads}", "other processes on this machine lower the number"),
    )
    mm = Result(
        "measured matmul throughput",
        flops / mm_s,
        "FLOP/s",
        (Step("matmul", "2n³ ÷ best time", f"2·{matmul_n}³ ÷ {mm_s:.4g} (best of {mms})", flops / mm_s, "FLOP/s"),),
        (
            f"fp32 {matmul_n}×{matmul_n} torch.mm on the CPU, {threads}",
            "other processes on this machine lower the number",
        ),
    )
    return Measured(bw, mm)
