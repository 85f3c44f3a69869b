"""Parameter counts by component: embeddings, attention, feed-forward (or experts), norms, head.

Symbols: L layers, d width, V vocabulary, Hq·D query width, Hkv·D key/value width, F FFN hidden width,
E experts of which k are active per token. A tied head reuses the embedding matrix and adds nothing.
"""

from __future__ import annotations

from typing import Any

from tfdojo.calc.describe import Arch, describe
from tfdojo.calc.result import Result, Step


def attention_params(a: Arch, *, biases: bool = True) -> int:
    """One layer's attention: W_q (d×HqD), W_k and W_v (d×HkvD each), W_o (HqD×d), plus any biases."""
    weights = 2 * a.dim * a.q_width + 2 * a.dim * a.kv_width
    return weights + biases * ((a.q_width + 2 * a.kv_width) * a.qkv_bias + a.dim * a.out_bias)


def expert_params(a: Arch, *, biases: bool = True) -> int:
    """One FFN (or one expert): 2·d·F for the GELU MLP, 3·d·F for a gated unit (gate, up, down), plus biases."""
    matrices = 3 if a.ffn_kind == "gated" else 2
    return matrices * a.dim * a.ffn_hidden + biases * ((matrices - 1) * a.ffn_hidden + a.dim) * a.ffn_bias


def ffn_params(a: Arch, *, active: bool = False, biases: bool = True) -> int:
    """One layer's FFN: a dense FFN, or E experts (k of them when ``active``) plus the d×E router."""
    if not a.n_experts:
        return expert_params(a, biases=biases)
    experts = a.experts_per_token if active else a.n_experts
    return experts * expert_params(a, biases=biases) + a.dim * a.n_experts


def norm_params(a: Arch) -> int:
    """All norms: (per layer · L + one per cross-attention + outside the blocks) × (d RMSNorm, 2d LayerNorm)."""
    per_norm = a.dim * (2 if a.norm == "layer" else 1)
    return (a.norms_per_layer * a.n_layers + a.n_cross_layers + a.extra_norms) * per_norm


def embedding_params(a: Arch) -> int:
    """Token table V·d, plus learned positions and token types where the family has them."""
    return (a.vocab_size + a.n_positions + a.n_token_types) * a.dim


def head_params(a: Arch) -> int:
    """Output head V·d when untied (0 when tied), plus its bias, plus BERT's d×d pooler."""
    if not a.has_lm_head:
        weights = 0
    else:
        weights = 0 if a.tied_embeddings else a.vocab_size * a.dim
        weights += a.vocab_size * a.head_bias
    return weights + (a.dim * a.dim + a.dim) * a.pooler


def matmul_params(a: Arch) -> int:
    """Weights one token multiplies through: active layers plus the head matrix (tied or not); no lookups, biases."""
    layer = attention_params(a, biases=False) + ffn_params(a, active=True, biases=False)
    cross = a.n_cross_layers * attention_params(a, biases=False)
    head = a.vocab_size * a.dim if a.has_lm_head else 0
    return a.n_layers * layer + cross + head  # BERT's pooler runs once per sequence, not per token


def param_count(config: Any) -> Result:
    """Total parameters by component (a tied head counted once); for a mixture of experts also the active count."""
    a = describe(config)
    L, d, V = a.n_layers, a.dim, a.vocab_size
    attn, ffn, norms = attention_params(a), ffn_params(a), norm_params(a)
    parts = {
        "embeddings": float(embedding_params(a)),
        "attention": float((L + a.n_cross_layers) * attn),
        "ffn": float(L * ffn),
        "norms": float(norms),
        "head": float(head_params(a)),
        **{what: float(n) for what, n in a.extra_params},
    }
    total = sum(parts.values())
    ffn_formula = "3·d·F" if a.ffn_kind == "gated" else "2·d·F"
    if a.n_experts:
        ffn_formula = f"E·{ffn_formula} + d·E"
    steps = [
        Step(
            "embeddings",
            "(V + positions + token types)·d",
            f"({V:,} + {a.n_positions:,} + {a.n_token_types:,})·{d:,}",
            parts["embeddings"],
            "params",
        ),
        Step(
            "attention per layer",
            "2·d·(Hq·D) + 2·d·(Hkv·D) (+ biases)",
            f"2·{d:,}·{a.q_width:,} + 2·{d:,}·{a.kv_width:,}",
            float(attn),
            "params",
        ),
        Step(
            "FFN per layer",
            f"{ffn_formula} (+ biases)",
            f"d={d:,}, F={a.ffn_hidden:,}" + (f", E={a.n_experts}" if a.n_experts else ""),
            float(ffn),
            "params",
        ),
        Step(
            "norms",
            "(norms per layer·L + cross-attention layers + outside)·" + ("2d" if a.norm == "layer" else "d"),
            f"({a.norms_per_layer}·{L} + {a.n_cross_layers} + {a.extra_norms})·{d:,}",
            parts["norms"],
            "params",
        ),
        Step(
            "head",
            "0 (tied to the embedding)" if a.tied_embeddings else "V·d",
            "tied" if a.tied_embeddings else f"{V:,}·{d:,}",
            parts["head"],
            "params",
        ),
        Step(
            "total",
            " + ".join(parts),
            " + ".join(f"{v:,.0f}" for v in parts.values()),
            total,
            "params",
        ),
        Step(
            "non-embedding (Kaplan et al., 2020's N)",
            "total − embeddings",
            f"{total:,.0f} − {parts['embeddings']:,.0f}",
            total - parts["embeddings"],
            "params",
        ),
    ]
    steps[-2:-2] = [Step(what, "family-specific", f"{n:,}", float(n), "params") for what, n in a.extra_params]
    if a.n_cross_layers:
        what = "attention (self + cross)"
        steps[1] = Step(
            what,
            "(L + cross layers)·attention per layer",
            f"({L} + {a.n_cross_layers})·{attn:,}",
            parts["attention"],
            "params",
        )
    if a.n_experts:
        active = total - L * ffn + L * ffn_params(a, active=True)
        steps.append(
            Step(
                "active per token",
                "total − L·(E − k)·expert",
                f"{total:,.0f} − {L}·({a.n_experts} − {a.experts_per_token})·{expert_params(a):,}",
                active,
                "params",
            )
        )
    assumptions = [
        "a tied output head shares the embedding matrix and is counted once",
        "rotary position tables are buffers, not parameters",
    ]
    if a.n_experts:
        assumptions.append("the router is one bias-free d×E matrix per layer")
    return Result(f"parameters of {a.family}", total, "params", tuple(steps), tuple(assumptions), parts)
