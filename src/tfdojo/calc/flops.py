"""FLOPs per token for training, a plain forward, prefill and decode; MFU from a measured throughput.

A multiply-add is 2 FLOPs, so a token through a weight matrix of N entries costs 2N forward and 4N backward
(the gradient with respect to the input and to the weight): the "6N rule" of Kaplan et al. (2020, §2.1).
Attention adds, per layer and token, QKᵀ and PV over S keys: 2·S·Hq·D each, 4·S·Hq·D together
(Hoffmann et al., 2022, Appendix F). Counted here is what a kernel multiplies:

* every matmul: the layers' weight matrices (the k active experts of a mixture), the output head (tied or not),
  and the attention scores over all S keys -- the causally masked half included, as eager attention and
  ``torch.utils.flop_counter`` do (``causal_skip=True`` halves it, as a kernel that skips masked blocks does);
* not counted: embedding lookups, biases, norms, softmax, activations, RoPE -- O(d) per token, not O(d²).

Backward is twice forward; a fused attention kernel (FlashAttention) also recomputes QKᵀ in backward, and
activation checkpointing re-runs the whole forward: both are "hardware" FLOPs, not "model" FLOPs, and MFU
(Chowdhery et al., 2022, "PaLM", Appendix B) uses model FLOPs only.
"""

from __future__ import annotations

from typing import Any, Literal

from tfdojo.calc.describe import describe
from tfdojo.calc.params import matmul_params
from tfdojo.calc.result import Result, Step
from tfdojo.errors import ConfigError

Mode = Literal["train", "forward", "prefill", "decode"]
MODES = ("train", "forward", "prefill", "decode")


def _check_positive(**values: float) -> None:
    bad = {k: v for k, v in values.items() if not v > 0}
    if bad:
        raise ConfigError(f"these must be positive: {bad}")


def flops_per_token(
    config: Any,
    seq_len: int,
    mode: Mode = "train",
    *,
    fused_attention: bool = False,
    recompute: bool = False,
    causal_skip: bool = False,
) -> Result:
    """FLOPs per token: ``train`` (forward + backward over sequences of ``seq_len``), ``forward``, ``prefill``
    (a ``seq_len`` prompt, logits for its last position only) or ``decode`` (one token against ``seq_len`` keys).

    ``fused_attention`` counts the QKᵀ recompute of a fused backward; ``recompute`` counts the second forward
    of activation checkpointing; ``causal_skip`` counts only the unmasked half of the prefill/train scores.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    _check_positive(seq_len=seq_len)
    a = describe(config)
    a.require_one_stack("flops_per_token")
    S = seq_len
    head = 2.0 * a.vocab_size * a.dim if a.has_lm_head else 0.0
    body = 2.0 * matmul_params(a) - head
    if mode == "prefill":
        head /= S  # one row of logits, shared by the prompt's S tokens
    keys = (S + 1) / 2 if causal_skip and mode != "decode" else S
    attn = 4.0 * a.n_layers * keys * a.q_width
    steps = [
        Step(
            "weights (forward)",
            "2 · matmul weights of the layers",
            f"2 · {(body / 2):,.0f}",
            body,
            "FLOP/token",
        ),
        Step(
            "head (forward)",
            "2·V·d" + (" ÷ S (last position only)" if mode == "prefill" else ""),
            f"2·{a.vocab_size:,}·{a.dim:,}" + (f" ÷ {S:,}" if mode == "prefill" else ""),
            head,
            "FLOP/token",
        ),
        Step(
            "attention scores (forward)",
            "4·L·S_keys·Hq·D" + (" with S_keys = (S + 1)/2" if keys != S else ""),
            f"4·{a.n_layers}·{keys:,g}·{a.q_width:,}",
            attn,
            "FLOP/token",
        ),
    ]
    factor, body_factor, attn_factor = 1.0, 1.0, 1.0
    assumptions = [
        "a multiply-add counts 2 FLOPs; embedding lookups, biases, norms, softmax and activations are not counted",
        "attention scores counted over every key, the causally masked ones included"
        if not causal_skip
        else "attention scores counted over unmasked (causal) keys only",
    ]
    if mode == "train":
        factor = body_factor = 3.0
        attn_factor = 3.5 if fused_attention else 3.0
        steps.append(
            Step(
                "backward",
                "2 × forward" + (" (+ ½ forward scores: fused kernels recompute QKᵀ)" if fused_attention else ""),
                f"weights ×2, attention ×{attn_factor - 1:g}",
                2 * (body + head) + (attn_factor - 1) * attn,
                "FLOP/token",
            )
        )
        if recompute:
            body_factor += 1.0
            attn_factor += 1.0
            steps.append(Step("recompute", "1 × blocks' forward (checkpointing)", "", body + attn, "FLOP/token"))
            assumptions.append("includes the per-block checkpointing recompute: hardware FLOPs, not model FLOPs")
            assumptions.append(
                "torch's non-reentrant checkpoint may stop a recompute early, skipping a block's last matmul"
            )
    elif mode == "decode":
        assumptions.append("decode: one new token attends to S cached keys (itself included)")
    parts = {"weights": body_factor * body, "head": factor * head, "attention": attn_factor * attn}
    total = sum(parts.values())
    steps.append(
        Step(
            f"total ({mode})",
            f"{body_factor:g}·weights + {factor:g}·head + {attn_factor:g}·attention",
            f"{body_factor:g}·{body:,.0f} + {factor:g}·{head:,.0f} + {attn_factor:g}·{attn:,.0f}",
            total,
            "FLOP/token",
        )
    )
    six_n = 6.0 * matmul_params(a)
    steps.append(Step("for comparison: the 6N rule", "6 · matmul weights", f"6 · {matmul_params(a):,}", six_n, "FLOP"))
    return Result(f"{mode} FLOPs per token at S={S:,}", total, "FLOP/token", tuple(steps), tuple(assumptions), parts)


def mfu(config: Any, seq_len: int, tokens_per_s: float, peak_flops: float, *, causal_skip: bool = False) -> Result:
    """Model FLOPs utilisation: training model FLOPs per token × measured tokens/s ÷ the hardware's peak FLOP/s."""
    _check_positive(tokens_per_s=tokens_per_s, peak_flops=peak_flops)
    per_token = flops_per_token(config, seq_len, "train", causal_skip=causal_skip)
    achieved = per_token.value * tokens_per_s
    value = achieved / peak_flops
    steps = (
        Step("model FLOPs per token (train)", "3·(2N + 4·L·S·Hq·D)", f"S = {seq_len:,}", per_token.value, "FLOP"),
        Step(
            "achieved", "FLOPs per token × tokens/s", f"{per_token.value:.4g} × {tokens_per_s:.4g}", achieved, "FLOP/s"
        ),
        Step("MFU", "achieved ÷ peak", f"{achieved:.4g} ÷ {peak_flops:.4g}", value, ""),
    )
    assumptions = (
        *per_token.assumptions,
        "model FLOPs only: recomputation (checkpointing, fused-attention backward) does not count toward MFU",
    )
    return Result("model FLOPs utilisation", value, "fraction", steps, assumptions, {})
