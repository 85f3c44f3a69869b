"""Parallelism arithmetic: per-GPU memory and per-step communication for DP, ZeRO-1/2/3, TP, SP, PP and CP.

Notation (Rajbhandari et al., 2020, "ZeRO"): Ψ parameters, N_d data-parallel ranks, K bytes of optimizer state
per parameter (12 for mixed-precision Adam: fp32 master weights, momentum and variance).

    stage 0 (DDP)       (2 + 2 + K)·Ψ            = 16Ψ
    stage 1 (P_os)      2Ψ + 2Ψ + K·Ψ/N_d
    stage 2 (P_os+g)    2Ψ + (2 + K)·Ψ/N_d
    stage 3 (P_os+g+p)  (2 + 2 + K)·Ψ/N_d

A ring all-reduce of M bytes sends 2·(n−1)/n·M per rank (a reduce-scatter then an all-gather); stages 1–2
keep that volume and stage 3 adds one more all-gather of the parameters (1.5×).
"""

from __future__ import annotations

from dataclasses import dataclass

from tfdojo.calc.result import Result, Step
from tfdojo.errors import ConfigError

ADAM_MIXED_K = 12  # fp32 master copy (4) + momentum (4) + variance (4) bytes per parameter


def _check(**values: float) -> None:
    for name, v in values.items():
        if v <= 0:
            raise ConfigError(f"{name} must be positive, got {v!r}")


def _ring(n: int) -> float:
    """Fraction of a buffer each rank sends in one reduce-scatter (or all-gather) over n ranks."""
    return (n - 1) / n


def _check_stage(stage: int) -> None:
    if stage not in (0, 1, 2, 3):
        raise ConfigError(f"ZeRO stage must be 0, 1, 2 or 3, got {stage}")


def _activation_step(micro_batch: int, seq_len: int, hidden: int, act_bytes: float, tensor: float) -> Step:
    """The working line for one micro-batch's activation tensor, b·s·h elements."""
    return Step(
        "activation", "b · s · h · bytes", f"{micro_batch} · {seq_len} · {hidden} · {act_bytes:g}", tensor, "bytes"
    )


def zero_memory(
    params: float,
    dp: int,
    stage: int,
    *,
    optimizer_bytes: float = ADAM_MIXED_K,
    weight_bytes: float = 2,
    grad_bytes: float = 2,
) -> Result:
    """Model-state bytes per GPU (weights, gradients, optimizer) under ZeRO stage 0–3 (Rajbhandari et al., 2020)."""
    _check(params=params, dp=dp)
    _check_stage(stage)
    shard = {"weights": stage >= 3, "gradients": stage >= 2, "optimizer": stage >= 1}
    per_param = {"weights": weight_bytes, "gradients": grad_bytes, "optimizer": optimizer_bytes}
    parts = {k: per_param[k] * params / (dp if shard[k] else 1) for k in per_param}
    value = sum(parts.values())
    steps = tuple(
        Step(
            k,
            f"{per_param[k]:g}Ψ" + (" / N_d" if shard[k] else ""),
            f"{per_param[k]:g} · {params:.4g}" + (f" / {dp}" if shard[k] else ""),
            parts[k],
            "bytes",
        )
        for k in per_param
    )
    total = Step(
        "model states",
        "weights + gradients + optimizer",
        " + ".join(f"{v:.4g}" for v in parts.values()),
        value,
        "bytes",
    )
    return Result(
        name=f"model states per GPU, ZeRO-{stage}, N_d={dp}",
        value=value,
        unit="bytes",
        steps=(*steps, total),
        assumptions=(
            f"{weight_bytes:g}-byte weights and {grad_bytes:g}-byte gradients; K={optimizer_bytes:g} optimizer bytes "
            "per parameter (12 = Adam with fp32 master weights, momentum, variance)",
            "activations, temporary buffers and fragmentation are not included",
        ),
        parts=parts,
    )


def dp_comm(params: float, dp: int, stage: int = 0, *, grad_bytes: float = 2) -> Result:
    """Bytes each data-parallel rank sends per step: all-reduce 2(n−1)/n·Ψ; ZeRO-3 adds one all-gather (3×)."""
    _check(params=params, dp=dp)
    _check_stage(stage)
    passes = 3 if stage == 3 else 2
    value = passes * _ring(dp) * params * grad_bytes
    return Result(
        name=f"data-parallel traffic per GPU per step, ZeRO-{stage}, N_d={dp}",
        value=value,
        unit="bytes",
        steps=(
            Step(
                "sent per rank",
                f"{passes} · (n−1)/n · Ψ · bytes",
                f"{passes} · {dp - 1}/{dp} · {params:.4g} · {grad_bytes:g}",
                value,
                "bytes",
            ),
        ),
        assumptions=(
            "ring collectives; stages 0–2: reduce-scatter + all-gather of gradients/updated weights",
            "stage 3: parameters all-gathered again in the backward pass (Rajbhandari et al., 2020, section 7)",
        ),
    )


def tp_comm(
    layers: int,
    hidden: int,
    seq_len: int,
    micro_batch: int,
    tp: int,
    *,
    micro_batches: int = 1,
    act_bytes: float = 2,
) -> Result:
    """Bytes each tensor-parallel rank sends per step: 4 all-reduces of (b·s·h) per layer (Shoeybi et al., 2019).

    Megatron splits attention by heads and the MLP by columns then rows, so each block needs one all-reduce
    after attention and one after the MLP in the forward pass, and two more in the backward pass. Sequence
    parallelism (Korthikanti et al., 2022) replaces each all-reduce by a reduce-scatter + all-gather: same bytes.
    """
    _check(layers=layers, hidden=hidden, seq_len=seq_len, micro_batch=micro_batch, tp=tp, micro_batches=micro_batches)
    tensor = micro_batch * seq_len * hidden * act_bytes
    per_all_reduce = 2 * _ring(tp) * tensor
    value = 4 * layers * micro_batches * per_all_reduce
    return Result(
        name=f"tensor-parallel traffic per GPU per step, t={tp}",
        value=value,
        unit="bytes",
        steps=(
            _activation_step(micro_batch, seq_len, hidden, act_bytes, tensor),
            Step(
                "one all-reduce", "2 (t−1)/t · activation", f"2 · {tp - 1}/{tp} · {tensor:.4g}", per_all_reduce, "bytes"
            ),
            Step(
                "per step",
                "4 · layers · micro-batches · all-reduce",
                f"4 · {layers} · {micro_batches} · {per_all_reduce:.4g}",
                value,
                "bytes",
            ),
        ),
        assumptions=("layers here are the ones this rank holds (divide by the pipeline depth)", "ring all-reduce"),
    )


def pp_bubble(stages: int, micro_batches: int) -> Result:
    """Idle fraction of a GPipe / 1F1B pipeline step: (p−1)/(m+p−1) (Huang et al., 2019; Narayanan et al., 2021)."""
    _check(stages=stages, micro_batches=micro_batches)
    value = (stages - 1) / (micro_batches + stages - 1)
    return Result(
        name=f"pipeline bubble, p={stages}, m={micro_batches}",
        value=value,
        unit="fraction",
        steps=(
            Step(
                "bubble",
                "(p − 1) / (m + p − 1)",
                f"({stages} − 1) / ({micro_batches} + {stages} − 1)",
                value,
                "fraction",
            ),
        ),
        assumptions=(
            "equal stage times; forward and backward each take p−1 slots to fill and drain",
            "an interleaved schedule with v chunks per GPU divides the bubble time by v (Narayanan et al., 2021)",
        ),
    )


def pp_comm(hidden: int, seq_len: int, micro_batch: int, micro_batches: int, *, act_bytes: float = 2) -> Result:
    """Bytes a middle pipeline stage sends per step: an activation forward and a gradient backward per micro-batch."""
    _check(hidden=hidden, seq_len=seq_len, micro_batch=micro_batch, micro_batches=micro_batches)
    tensor = micro_batch * seq_len * hidden * act_bytes
    value = 2 * micro_batches * tensor
    return Result(
        name=f"pipeline traffic per GPU per step, m={micro_batches}",
        value=value,
        unit="bytes",
        steps=(
            _activation_step(micro_batch, seq_len, hidden, act_bytes, tensor),
            Step("per step", "2 · m · activation", f"2 · {micro_batches} · {tensor:.4g}", value, "bytes"),
        ),
        assumptions=("point-to-point sends between neighbouring stages; first and last stages send half",),
    )


def cp_comm(
    layers: int,
    kv_dim: int,
    seq_len: int,
    micro_batch: int,
    cp: int,
    *,
    micro_batches: int = 1,
    act_bytes: float = 2,
) -> Result:
    """Bytes each context-parallel rank sends per step in ring attention (Liu et al., 2023).

    Each rank holds s/c tokens and passes its K and V chunk around the ring (c−1 hops) in the forward pass;
    the backward pass passes K, V and their gradients (twice the forward traffic).
    """
    _check(layers=layers, kv_dim=kv_dim, seq_len=seq_len, micro_batch=micro_batch, cp=cp, micro_batches=micro_batches)
    chunk = 2 * micro_batch * (seq_len / cp) * kv_dim * act_bytes
    forward = (cp - 1) * chunk
    value = 3 * forward * layers * micro_batches
    return Result(
        name=f"context-parallel traffic per GPU per step, c={cp}",
        value=value,
        unit="bytes",
        steps=(
            Step(
                "K,V chunk",
                "2 · b · (s/c) · kv_dim · bytes",
                f"2 · {micro_batch} · {seq_len}/{cp} · {kv_dim} · {act_bytes:g}",
                chunk,
                "bytes",
            ),
            Step("forward, one layer", "(c − 1) · chunk", f"{cp - 1} · {chunk:.4g}", forward, "bytes"),
            Step(
                "per step",
                "3 · forward · layers · micro-batches",
                f"3 · {forward:.4g} · {layers} · {micro_batches}",
                value,
                "bytes",
            ),
        ),
        assumptions=("kv_dim = n_kv_heads · head_dim (GQA shrinks the traffic)", "ring attention, no load balancing"),
    )


@dataclass(frozen=True)
class ActivationShape:
    """What the activation estimate needs to know about a model and a micro-batch."""

    layers: int
    hidden: int
    heads: int
    seq_len: int
    micro_batch: int

    def __post_init__(self) -> None:
        _check(**vars(self))


def activation_memory(
    shape: ActivationShape,
    *,
    tp: int = 1,
    sequence_parallel: bool = False,
    recompute: bool = False,
    flash_attention: bool = True,
) -> Result:
    """Activation bytes saved for backward by `layers` GPT-style blocks (Korthikanti et al., 2022, section 4).

    Per layer, in 16-bit, with b micro-batch, s sequence, h hidden, a heads, t tensor-parallel ranks:
        no parallelism      s·b·h·(34 + 5·a·s/h)
        tensor parallel     s·b·h·(10 + 24/t + 5·a·s/(h·t))
        tensor + sequence   s·b·h·(34/t + 5·a·s/(h·t))
        full recompute      2·s·b·h (only the block input is kept; ÷t with sequence parallelism)
    FlashAttention never stores the s×s scores, which removes the 5·a·s/h term.
    """
    s, b, h, a = shape.seq_len, shape.micro_batch, shape.hidden, shape.heads
    _check(tp=tp)
    sbh = s * b * h
    scores = 0.0 if flash_attention else 5 * a * s / (h * tp)
    if recompute:
        per_token_coeff = 2 / (tp if sequence_parallel else 1)
        formula = "2 · s·b·h" + (" / t" if sequence_parallel else "")
    elif sequence_parallel:
        per_token_coeff = 34 / tp + scores
        formula = "s·b·h · (34/t" + (" + 5as/(ht))" if scores else ")")
    else:
        per_token_coeff = 10 + 24 / tp + scores
        formula = "s·b·h · (10 + 24/t" + (" + 5as/(ht))" if scores else ")")
    per_layer = sbh * per_token_coeff
    value = per_layer * shape.layers
    return Result(
        name="activation memory per GPU",
        value=value,
        unit="bytes",
        steps=(
            Step("s·b·h", "s · b · h", f"{s} · {b} · {h}", sbh),
            Step("per layer", formula, f"{sbh:.4g} · {per_token_coeff:.4g}", per_layer, "bytes"),
            Step("all layers held", "per layer · layers", f"{per_layer:.4g} · {shape.layers}", value, "bytes"),
        ),
        assumptions=(
            "Korthikanti et al. (2022) count for a GPT block with a 4h MLP, 16-bit activations, dropout masks",
            "FlashAttention (no s×s scores kept)" if flash_attention else "eager attention keeps the s×s scores",
            "embeddings, logits and the loss are left out",
        ),
    )
