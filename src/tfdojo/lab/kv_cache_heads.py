"""KV cache size and decode speed vs the number of key/value heads: MHA, GQA, MQA (Shazeer, 2019; Ainslie et
al., 2023). The bytes a real cache holds after a prefill must equal ``tfdojo calc kv``; fewer KV heads shrink
it by Hq / Hkv, and decode reads less per token."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tfdojo.calc.kv_cache import kv_cache_bytes
from tfdojo.infer.cache import StaticKVCache
from tfdojo.lab.figures import figure
from tfdojo.lab.result import Finding
from tfdojo.models.llama import Llama, LlamaConfig

N_HEADS = 16


def tiny_llama(n_kv_heads: int, context: int) -> Llama:
    """An attention-heavy Llama (narrow FFN) so that the cache, not the weights, dominates decode traffic."""
    config = LlamaConfig(
        vocab_size=256, dim=512, n_layers=4, n_heads=N_HEADS, n_kv_heads=n_kv_heads, ffn_hidden=256, max_seq_len=context
    )
    torch.manual_seed(0)
    return Llama(config).eval()


@torch.no_grad()
def measure(n_kv_heads: int, context: int, steps: int, calc: Callable[..., Any]) -> dict[str, float]:
    """Prefill ``context - steps`` tokens, decode ``steps`` more; the cache's bytes and decode tokens per second."""
    model = tiny_llama(n_kv_heads, context)
    cache = StaticKVCache.for_model(model, batch=1, max_len=context)
    ids = torch.randint(0, 256, (1, context))
    model(ids[:, : context - steps], cache=cache, last_only=True)
    start = time.perf_counter()
    for t in range(context - steps, context):
        model(ids[:, t : t + 1], cache=cache)
    seconds = time.perf_counter() - start
    measured = cache.k.untyped_storage().nbytes() + cache.v.untyped_storage().nbytes()
    predicted = float(calc(model.config, seq_len=context, batch=1, dtype=torch.float32))
    return {
        "kv_heads": n_kv_heads,
        "measured_bytes": measured,
        "calc_bytes": predicted,
        "decode_tok_s": steps / seconds,
    }


def run(out: Path, *, quick: bool = False, calc: Callable[..., Any] = kv_cache_bytes) -> Finding:
    """MHA (16 KV heads), GQA (4, 2) and MQA (1); ``calc`` is the estimator under test."""
    context, steps = (64, 2) if quick else (4096, 32)
    rows = [measure(h, context, steps, calc) for h in (16, 4, 2, 1)]
    mha = rows[0]["measured_bytes"]
    checks = {
        "measured bytes == calc kv": all(r["measured_bytes"] == r["calc_bytes"] for r in rows),
        "bytes shrink by Hq/Hkv": all(r["measured_bytes"] * N_HEADS == mha * r["kv_heads"] for r in rows),
    }
    with figure(out, "kv-cache-heads", ncols=2) as (a, b):
        labels = [f"{r['kv_heads']} KV" for r in rows]
        a.bar(labels, [r["measured_bytes"] / 2**20 for r in rows], label="measured")
        a.plot(labels, [r["calc_bytes"] / 2**20 for r in rows], "k_", markersize=30, label="calc kv")
        a.set_ylabel(f"MiB at {context} tokens (fp32)")
        a.legend()
        b.bar(labels, [r["decode_tok_s"] for r in rows], color="tab:green")
        b.set_ylabel("decode tokens / s (shared CPU)")
        for ax in (a, b):
            ax.set_xlabel(f"{N_HEADS} query heads")
    numbers = {"context": context, "decode_steps": steps, "rows": rows, "checks": checks}
    return Finding(all(checks.values()), numbers, [str(out / "kv-cache-heads.png")])
