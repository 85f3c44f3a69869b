"""Attention sinks (Xiao et al., 2024, StreamingLLM): most of SmolLM2's heads park their attention on the first
token, so a cache that evicts it (window only) loses perplexity once the text outgrows the window, while keeping
four sink tokens plus the window stays close to full attention."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from tfdojo.infer.sink_cache import SinkKVCache
from tfdojo.lab.figures import figure
from tfdojo.lab.probe import attention_maps, next_token_loss, smollm, text_ids
from tfdojo.lab.result import Finding
from tfdojo.loading import one_thread


@torch.no_grad()
def streamed_perplexity(model: torch.nn.Module, ids: torch.Tensor, sinks: int, window: int, chunk: int) -> float:
    """Perplexity of ``ids`` fed ``chunk`` tokens at a time through a sinks + window cache."""
    cache = SinkKVCache.factory(sinks=sinks, window=window, room=chunk)(model, 1, sinks + window)
    nll, count = 0.0, 0
    for start in range(0, ids.shape[1] - 1, chunk):
        piece = ids[:, start : start + chunk + 1]  # the chunk and the token after it (the last target)
        logits = model(piece[:, :-1], cache=cache)  # (1, t, V)
        loss = next_token_loss(torch.cat((logits, logits[:, -1:]), 1), piece)  # (1, t)
        nll, count = nll + loss.sum().item(), count + loss.numel()
    return math.exp(nll / count)


@torch.no_grad()
@one_thread()  # 8-token chunks: at load ~4 on 2 cores two threads made the quick run 53 s, one 8 s
def run(out: Path, *, quick: bool = False) -> Finding:
    """Sink share per layer and head; perplexity over 4x the window: full, window only, 4 sinks + window."""
    lm = smollm()
    model = lm.model
    window, chunk = (16, 8) if quick else (128, 16)
    ids = text_ids(lm.tokenizer, 4 * window, offset=2000)
    maps = attention_maps(model, ids[:, :64])[:, 0]  # (L, H, 64, 64)
    share = maps[:, :, 8:, 0].mean(-1)  # (L, H): attention of queries 8… on the first key
    uniform = (1.0 / torch.arange(9, maps.shape[-1] + 1)).mean().item()  # the share if attention were uniform
    full = math.exp(next_token_loss(model(ids), ids).mean().item())
    window_only = streamed_perplexity(model, ids, sinks=0, window=window + 4, chunk=chunk)
    with_sinks = streamed_perplexity(model, ids, sinks=4, window=window, chunk=chunk)
    per_layer = share.mean(-1).tolist()
    checks = {
        "most layers put > 10x uniform attention on token 1": sum(s > 10 * uniform for s in per_layer)
        > len(per_layer) / 2,
        "window-only perplexity > 1.3x sinks + window": window_only > 1.3 * with_sinks,
        "sinks + window within 1.5x of full attention": with_sinks < 1.5 * full,
    }
    with figure(out, "attention-sinks", ncols=2) as (a, b):
        image = a.imshow(share.T.numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        a.set_xlabel("layer")
        a.set_ylabel("head")
        a.set_title("attention on the first token")
        a.figure.colorbar(image, ax=a)
        labels = ["full", "window only", "4 sinks + window"]
        b.bar(labels, [full, window_only, with_sinks], color=["grey", "tab:red", "tab:green"])
        b.set_ylabel(f"perplexity over {ids.shape[1]} tokens")
        b.set_title(f"cache of {window + 4} tokens")
    numbers = {
        "tokens": int(ids.shape[1]),
        "cache_tokens": window + 4,
        "first_token_share_per_layer": per_layer,
        "first_token_share_per_head": share.tolist(),
        "uniform_share": uniform,
        "perplexity": {"full": full, "window_only": window_only, "sinks_plus_window": with_sinks},
        "checks": checks,
    }
    return Finding(all(checks.values()), numbers, [str(out / "attention-sinks.png")])
