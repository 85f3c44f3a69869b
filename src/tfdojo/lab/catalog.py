"""Every lab experiment, in the order the gallery shows them, and the lookups the CLI and the trainer use."""

from __future__ import annotations

from tfdojo.errors import ConfigError
from tfdojo.lab.experiment import Experiment

EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        name="sqrt-d-scaling",
        module="sqrt_d",
        claim="Dividing QKᵀ by √d keeps score variance ~1, softmax entropy flat and gradients alive as d grows; "
        "without it variance grows like d, the softmax saturates and its gradient vanishes.",
        method="q, k ~ N(0, I) in fp64 for d = 16…1024 against 512 keys; score variance, mean softmax entropy and "
        "the median per-query ‖dL/dscores‖ for a random upstream gradient, with scale 1/√d and with scale 1.",
        questions=("attention-formula-walkthrough", "softmax-numerical-stability", "qk-norm-attention-logit-growth"),
    ),
    Experiment(
        name="kv-cache-heads",
        module="kv_cache_heads",
        claim="A KV cache holds exactly 2·L·Hkv·D·S·B values (what `tfdojo calc kv` says), so GQA and MQA shrink "
        "it by Hq/Hkv.",
        method="A 4-layer, 16-query-head Llama with 16, 4, 2 and 1 KV heads: prefill a StaticKVCache to 4,096 "
        "tokens, count its storage bytes, compare with calc.kv_cache_bytes; decode speed is reported, not asserted "
        "(the CPU is shared).",
        questions=(
            "kv-cache-purpose",
            "kv-cache-llama2-7b-4k",
            "kv-cache-llama3-8b-batch",
            "gqa-head-grouping",
            "gqa-decode-memory-traffic",
            "gqa-repeat-kv",
        ),
    ),
)


def experiment(name: str) -> Experiment:
    """The experiment called ``name``; ConfigError listing the names when there is none."""
    for e in EXPERIMENTS:
        if e.name == name:
            return e
    names = ", ".join(e.name for e in EXPERIMENTS)
    raise ConfigError(f"no lab experiment called {name!r}; try one of: {names} (or `tfdojo lab list`)")


def experiments_for(question_id: str) -> list[Experiment]:
    """The experiments that answer bank question ``question_id`` (empty when none does)."""
    return [e for e in EXPERIMENTS if question_id in e.questions]
