"""Associative recall: softmax attention against linear attention (Katharopoulos et al., 2020), whose causal form
squeezes the past into a fixed-size state, at growing numbers of key-value pairs (after Arora et al., 2023,
"Zoology", multi-query associative recall)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from tfdojo.lab.figures import figure
from tfdojo.lab.result import Finding
from tfdojo.lab.tiny_lm import Recipe, train
from tfdojo.models.variants import VariantConfig, VariantLM
from tfdojo.train.packing import IGNORE

KEYS, VALUES = 16, 8
PAIRS = (2, 4, 8, 16)
VOCAB = VALUES + KEYS + KEYS * VALUES  # value ids, query-key ids, then one id per (key, value) pair


def sequences(pairs: int, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``pairs`` (key, value) tokens with distinct keys, then every key again as a query; targets are the values.

    Each pair is one token (id VALUES + KEYS + key·VALUES + value), so one attention layer can recall: a query
    attends to the pair token with its key and reads the value. Nothing else is predicted (targets IGNORE).
    """
    keys = torch.rand(batch, KEYS, generator=generator).argsort(-1)[:, :pairs]  # (B, n) distinct keys
    values = torch.randint(0, VALUES, (batch, pairs), generator=generator)  # (B, n)
    order = torch.rand(batch, pairs, generator=generator).argsort(-1)  # queries in a fresh order
    inputs = torch.cat([VALUES + KEYS + keys * VALUES + values, VALUES + keys.gather(1, order)], dim=1)  # (B, 2n)
    targets = torch.cat([torch.full((batch, pairs), IGNORE), values.gather(1, order)], dim=1)  # (B, 2n)
    return inputs, targets


@torch.no_grad()
def recall(model: VariantLM, pairs: int, count: int = 512) -> float:
    """Share of queries whose value is the model's top prediction, on fresh sequences."""
    inputs, targets = sequences(pairs, count, torch.Generator().manual_seed(10_000 + pairs))
    predicted = model(inputs)[:, pairs:].argmax(-1)  # (B, n) at the query positions
    return (predicted == targets[:, pairs:]).float().mean().item()


def run(out: Path, *, quick: bool = False, backends: dict[str, str] | None = None) -> Finding:
    """Train a one-layer model per arm on a mix of pair counts; ``backends`` maps an arm to its attention backend
    (a wrong mapping, e.g. the "linear" arm built with softmax attention, makes the claim fail)."""
    backends = {"softmax": "sdpa", "linear": "linear"} if backends is None else backends
    steps, batch_size = (300, 32) if quick else (600, 64)
    rows = {}
    for name, backend in backends.items():
        config = VariantConfig(
            vocab_size=VOCAB, dim=64, n_layers=1, n_heads=4, ffn_hidden=256, max_seq_len=2 * PAIRS[-1],
            positions="none", backend=backend,
        )  # fmt: skip

        def batch(step: int) -> tuple[Tensor, Tensor]:
            return sequences(PAIRS[step % len(PAIRS)], batch_size, torch.Generator().manual_seed(step))

        model = train(config, batch, Recipe(steps=steps, lr=1e-2))
        rows[name] = {"backend": backend, "recall": {str(n): recall(model, n) for n in PAIRS}}
    soft, lin = rows["softmax"]["recall"], rows["linear"]["recall"]
    few, many = str(PAIRS[0]), str(PAIRS[-1])
    gap = {n: soft[n] - lin[n] for n in soft}
    checks = {
        f"softmax recalls > 90% at every pair count up to {many}": min(soft.values()) > 0.9,
        f"linear learned the task (> 3x chance with {few} pairs)": lin[few] > 3 / VALUES,
        "linear's recall never rises with more pairs (tolerance 0.02)": all(
            lin[str(b)] <= lin[str(a)] + 0.02 for a, b in zip(PAIRS, PAIRS[1:], strict=False)
        ),
        f"linear's recall falls by > 0.05 from {few} to {many} pairs": lin[few] - lin[many] > 0.05,
        f"the gap to softmax at {many} pairs is > 0.05 and over twice the gap at {few}": gap[many]
        > max(0.05, 2 * gap[few]),
    }
    with figure(out, "linear-vs-softmax") as (ax,):
        for name, r in rows.items():
            ax.plot(PAIRS, list(r["recall"].values()), "o-", label=f"{name} ({r['backend']})")
        ax.axhline(1 / VALUES, color="grey", ls=":", label="chance")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("key-value pairs in context")
        ax.set_ylabel("recall (top-1 accuracy)")
        ax.legend(fontsize=7)
    numbers = {
        "steps": steps,
        "batch_size": batch_size,
        "keys": KEYS,
        "values": VALUES,
        "pairs": list(PAIRS),
        "rows": rows,
        "checks": checks,
    }
    return Finding(all(checks.values()), numbers, [str(out / "linear-vs-softmax.png")])
