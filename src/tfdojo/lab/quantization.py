"""Quantization on SmolLM2 (Dettmers et al., 2022, LLM.int8(); Frantar et al., 2023, GPTQ; Liu et al., 2024, KIVI):
perplexity on held-out Shakespeare and decode speed as the weights go fp32 → bf16 → int8 → int4 and as the KV
cache goes fp32 → int8 → int4.

The bundled GGUF's layers are Q4_1 already, so fp32 *is* its int4 codes dequantized: int4 here reads the file's
own codes (head in int8), int8 requantizes every matrix to 8 bits per row. Text is fed 16 tokens at a time through a
KV cache, the row count at which the quantized decoder multiplies by its integer weights (as in decoding).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from tfdojo.infer.cache import CacheGeometry, StaticKVCache
from tfdojo.infer.quant_cache import QuantizedKVCache
from tfdojo.infer.quant_llama import MAX_INT_ROWS
from tfdojo.lab.figures import figure
from tfdojo.lab.probe import SMOLLM, smollm
from tfdojo.lab.result import Finding
from tfdojo.loading import one_thread
from tfdojo.nn.kv import KVCache
from tfdojo.train.corpus import shakespeare

PLAY = "winters_tale"  # a held-out play of tfdojo.train.corpus


def held_out_ids(tokenizer: Any, n_tokens: int) -> torch.Tensor:
    """(1, n_tokens) ids of the held-out play from its first act (past the Gutenberg header)."""
    text = next(d.text for d in shakespeare().val if d.name == PLAY)
    return torch.tensor([tokenizer.encode(text[text.index("ACT I") :])[:n_tokens]])


@torch.inference_mode()
def perplexity(decoder: torch.nn.Module, ids: torch.Tensor, cache: KVCache) -> float:
    """Perplexity of ``ids`` fed MAX_INT_ROWS tokens at a time through ``decoder`` and ``cache``, on one thread (a
    16-row chunk is too small to split: at load ~4 on 2 cores two threads made the quick run 2.5x slower)."""
    nll, count = 0.0, 0
    with one_thread():
        for start in range(0, ids.shape[1] - 1, MAX_INT_ROWS):
            piece = ids[:, start : start + MAX_INT_ROWS + 1]  # the chunk and the token after it (the last target)
            logp = decoder(piece[:, :-1], cache=cache).float().log_softmax(-1)  # (1, t, V)
            nll -= logp.gather(-1, piece[:, 1:, None]).sum().item()
            count += piece.shape[1] - 1
    return math.exp(nll / count)


def decode_speed(lm: Any, prompt: torch.Tensor, new_tokens: int, repeats: int, cache: Any = None) -> float:
    """Decode tokens/s of a greedy continuation, best of ``repeats`` (the CPU is shared)."""
    runs = [
        lm.generate(prompt[0].tolist(), max_new_tokens=new_tokens, ignore_eos=True, cache=cache).metrics.decode_tok_s
        for _ in range(repeats)
    ]
    return max(runs)


def run(out: Path, *, quick: bool = False) -> Finding:
    """Perplexity and decode speed per weight format and per KV-cache format; checks on the perplexity changes."""
    import tfdojo

    n_tokens, new_tokens, repeats = (128, 4, 1) if quick else (512, 32, 3)  # 64 tokens: KV int8 noise > 1%
    fp32 = smollm()
    ids = held_out_ids(fp32.tokenizer, n_tokens)
    prompt = ids[:, :16]
    weights = {"fp32": fp32, "bf16": tfdojo.load(SMOLLM, dtype=torch.bfloat16)}
    weights |= {q: tfdojo.load(SMOLLM, quant=q) for q in ("int8", "int4")}
    ppl, speed = {}, {}
    for name, lm in weights.items():
        ppl[f"weights {name}"] = perplexity(lm.decoder, ids, StaticKVCache.for_model(lm.model, 1, n_tokens))
        speed[f"weights {name}"] = decode_speed(lm, prompt, new_tokens, repeats)
    geometry = CacheGeometry.of(fp32.model)
    kv_bytes = {"fp32": StaticKVCache.for_model(fp32.model, 1, 1).k.nbytes * 2}
    for bits in (8, 4):
        name = f"int{bits}"
        ppl[f"kv {name}"] = perplexity(fp32.decoder, ids, QuantizedKVCache(geometry, 1, n_tokens, bits))
        speed[f"kv {name}"] = decode_speed(fp32, prompt, new_tokens, repeats, QuantizedKVCache.factory(bits))
        kv_bytes[name] = QuantizedKVCache(geometry, 1, 1, bits).bytes_per_position()
    base = ppl["weights fp32"]
    change = {k: v / base - 1 for k, v in ppl.items()}
    checks = {
        "a real model on verse (fp32 perplexity 5…200)": 5 < base < 200,
        "bf16, int8 and int4 (the file's Q4_1 codes) weights within 2% of fp32": all(
            abs(change[f"weights {w}"]) < 0.02 for w in ("bf16", "int8", "int4")
        ),
        "int8 KV cache within 1% of fp32 (≈ free)": abs(change["kv int8"]) < 0.01,
        "int4 KV cache (per-token) costs over 2% and more than int8 KV": change["kv int4"] > 0.02
        and change["kv int4"] > abs(change["kv int8"]),
    }
    with figure(out, "quantization", ncols=2, width=4.6) as (a, b):
        names = list(ppl)
        colours = ["tab:blue"] * len(weights) + ["tab:orange"] * 2
        a.bar(names, [100 * change[n] for n in names], color=colours)
        a.axhline(0, color="grey", lw=0.8)
        a.set_ylabel("perplexity change vs fp32 (%)")
        a.set_title(f"held-out perplexity, fp32 = {base:.1f}")
        b.bar(names, [speed[n] for n in names], color=colours)
        b.set_ylabel("decode tokens/s (shared CPU)")
        for ax in (a, b):
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    numbers = {
        "play": PLAY,
        "tokens": int(ids.shape[1]),
        "chunk": MAX_INT_ROWS,
        "perplexity": ppl,
        "change_vs_fp32": change,
        "decode_tok_s": speed,
        "decode_new_tokens": new_tokens,
        "kv_bytes_per_position": kv_bytes,
        "checks": checks,
    }
    return Finding(all(checks.values()), numbers, [str(out / "quantization.png")])
