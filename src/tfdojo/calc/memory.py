"""Memory of a model: bytes per element by dtype, weight bytes, and training memory (states + activations).

Training state per parameter (Rajbhandari et al., 2020, "ZeRO", §3.1): weights and gradients at the
compute dtype, an fp32 master copy under mixed precision, and fp32 optimizer moments (Adam keeps two).
With bf16 + Adam that is 2 + 2 + 4 + 8 = 16 bytes per parameter, the same as plain fp32 (4 + 4 + 8).

Activations are the tensors autograd keeps for backward. The per-layer terms below are what tfdojo's modules
save -- checked against ``torch.autograd.graph.saved_tensors_hooks`` -- written with the symbols
b batch, s sequence, d width, F FFN width, Hq·D / Hkv·D query / key widths, a bytes per activation element:

    norm (RMSNorm)     b·s·d·(4 + 2a) + 4·b·s      fp32 copy of the input, normalised x, scaled output; 1/rms
    norm (LayerNorm)   b·s·d·2a + 8·b·s            input, output; mean and 1/std in fp32 (a CPU keeps them at a)
    attention eager    4·b·s·(Hq + 2Hkv)·D + 4·b·Hq·s² + a·b·s·Hq·D    fp32 q, k, v; the s×s probabilities
    attention fused    a·b·s·(Hq + 2Hkv)·D + a·b·s·Hq·D + 4·b·Hq·s    q, k, v, output; the log-sum-exp
    FFN gated / MLP    4 / 2 · a·b·s·F                      gate, up, act(gate), product / pre- and post-activation

A norm's output is kept by the matmul it feeds. Where the norms sit (``Arch.layout``) decides what else is kept:

    pre-LN             a final norm before the head; block 0's input is its first norm's input
    post-LN            no final norm: block 0's q/k/v projections keep the embeddings, + a·b·s·d (the head keeps
                       the last block's output, its second norm's, counted above; + a·b·s·d when checkpointing)
    sandwich           the norms after each sublayer feed the residual add, which keeps nothing: no output term

tfdojo's sdpa backend passes a window or ALiBi as a dense mask and zeroes the rows that see no key
(``masked_fill``, + s bool flags, Hq·s with ALiBi); a kernel that applies them itself (FlashAttention-2, tfdojo's
tiled backend: ``fused_masks=True``) keeps nothing more than the plain fused term:

    window             + a·s² + a·b·s·Hq·D      the (s, s) mask, converted to an additive one at the activation
                                                dtype, and the kernel's output, kept apart from the zeroed copy
    ALiBi              4·b·s·3Hq·D + 4·b·Hq·s² + a·b·s·Hq·D    in place of the fused term: the (Hq, s, s) bias is
                                                3-D, which torch's fused CPU kernel refuses (math path, below;
                                                with dropout on that path, 12·b·Hq·s²)

With dropout p > 0 (Srivastava et al., 2014) each dropout keeps a one-byte mask (``torch.native_dropout``):

    residual dropouts  2·b·s·d                              after attention and after the FFN
    eager attention    + 5·b·Hq·s²                          the dropped fp32 probabilities and their mask
    sdpa on a CPU      4·b·s·3Hq·D + 12·b·Hq·s² + a·b·s·Hq·D    in place of the fused term: torch's math path
    embeddings         b·s·d                                outside the blocks, kept with checkpointing too

A fused kernel (FlashAttention; Dao et al., 2022) never stores the s×s matrix: that is the O(s²) term. It drops
inside itself and keeps only its random-number state (the paper's Algorithm 2), so dropout adds no attention term;
torch's SDPA on a CPU has no fused kernel that drops and falls back to its math path (``fused_dropout=False``),
which widens q, k, v to Hq heads in fp32 and keeps the fp32 probabilities, dropout noise and dropped probabilities.
Per-block activation checkpointing (Chen et al., 2016) keeps only each block's input, a·b·s·d, and recomputes
one block at a time during backward, so the peak holds one block's full activations on top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from tfdojo.calc.describe import Arch, describe
from tfdojo.calc.params import param_count
from tfdojo.calc.result import Result, Step
from tfdojo.errors import ConfigError

# bytes per element; the GGUF block formats store a block of weights plus its scales (ggml's block_q* structs:
# q4_0 = fp16 scale + 32 4-bit values = 18 bytes per 32, q8_0 = fp16 scale + 32 int8 = 34 bytes per 32, ...)
BYTES_PER_ELEMENT: dict[str, float] = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float8": 1,
    "int8": 1,
    "int4": 0.5,
    "q8_0": 34 / 32,
    "q5_1": 24 / 32,
    "q5_0": 22 / 32,
    "q4_1": 20 / 32,
    "q4_0": 18 / 32,
    "q6_k": 210 / 256,
    "q5_k": 176 / 256,
    "q4_k": 144 / 256,
    "q3_k": 110 / 256,
    "q2_k": 84 / 256,
}
DTYPE_ALIASES = {"fp64": "float64", "fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16"}
DTYPE_ALIASES |= {"bf16": "bfloat16", "fp8": "float8", "float8_e4m3fn": "float8", "float8_e5m2": "float8"}
DTYPE_ALIASES |= {"f64": "float64", "f32": "float32", "f16": "float16", "i8": "int8"}  # GGUF's names
ExpertSlots = Literal["routed", "padded"]
OPTIMIZER_STATES = {"adamw": 2, "adam": 2, "lion": 1, "sgd_momentum": 1, "sgd": 0}


def dtype_name(dtype: str | torch.dtype) -> str:
    """Canonical name of a dtype or quantization (``torch.bfloat16``, ``"bf16"`` -> ``"bfloat16"``)."""
    name = str(dtype).removeprefix("torch.").lower() if isinstance(dtype, torch.dtype) else str(dtype).lower()
    name = DTYPE_ALIASES.get(name, name)
    if name not in BYTES_PER_ELEMENT:
        raise ConfigError(f"unknown dtype {dtype!r}; choose one of {', '.join(BYTES_PER_ELEMENT)}")
    return name


def bytes_per_element(dtype: str | torch.dtype) -> float:
    """Bytes one element takes at ``dtype`` (fractional for 4-bit and block-quantized formats)."""
    return BYTES_PER_ELEMENT[dtype_name(dtype)]


def check_sizes(**sizes: int) -> None:
    """ConfigError unless every size is a positive number."""
    bad = {k: v for k, v in sizes.items() if not v > 0}
    if bad:
        raise ConfigError(f"sizes must be positive, got {bad}")


def weight_bytes(config: Any, dtype: str | torch.dtype = "bfloat16") -> Result:
    """Bytes of the weights at a dtype or quantization: parameters × bytes per parameter."""
    params = param_count(config).value
    per = bytes_per_element(dtype)
    value = params * per
    step = Step("weights", "parameters × bytes per parameter", f"{params:,.0f} × {per:g}", value, "bytes")
    assumptions = ("every tensor at the same dtype (real quantized files keep norms and some matrices wider)",)
    return Result(f"weights at {dtype_name(dtype)}", value, "bytes", (step,), assumptions, {"weights": value})


@dataclass(frozen=True)
class _Term:
    what: str
    formula: str
    substituted: str
    value: float


def _norm_term(a: Arch, rows: int, act: float, count: int, where: str, *, with_output: bool = True) -> _Term:
    outputs = 1 if with_output else 0  # the output is the next matmul's input, unless counted elsewhere
    if a.norm == "rms":
        per = rows * a.dim * (4 + (1 + outputs) * act) + 4 * rows
        formula = f"n·(b·s·d·(4 + {1 + outputs}a) + 4·b·s)"
        return _Term(
            where, formula, f"{count}·({rows:,}·{a.dim}·(4 + {1 + outputs}·{act:g}) + 4·{rows:,})", count * per
        )
    per = rows * a.dim * (1 + outputs) * act + 8 * rows
    formula = f"n·(b·s·d·{1 + outputs}a + 8·b·s)"
    return _Term(where, formula, f"{count}·({rows:,}·{a.dim}·{1 + outputs}·{act:g} + 8·{rows:,})", count * per)


def _layer_norms(a: Arch, rows: int, act: float) -> list[_Term]:
    if a.layout != "sandwich":
        return [_norm_term(a, rows, act, a.norms_per_layer, "norms")]
    # the sandwich's norms after each sublayer feed the residual add, which saves nothing: their output is not kept
    before = _norm_term(a, rows, act, 2, "norms before the sublayers")
    after = _norm_term(a, rows, act, a.norms_per_layer - 2, "norms after the sublayers", with_output=False)
    return [before, after]


def _attention_term(
    a: Arch, batch: int, seq: int, act: float, fused: bool, fused_dropout: bool, fused_masks: bool
) -> _Term:
    rows = batch * seq
    qkv = rows * (a.q_width + 2 * a.kv_width)
    alibi, window = a.positions == "alibi", a.sliding_window is not None
    dense = (alibi or window) and not (fused and fused_masks)  # a mask tensor, as eager and tfdojo's sdpa build
    alibi, window = alibi and dense, window and dense
    # tfdojo's eager and sdpa zero the output rows that see no key: a bool flag per row (and head, with ALiBi)
    flags = seq * (a.n_heads if alibi else 1) if dense else 0
    flag_formula, flag_sub = (
        ("", "") if not flags else ((" + Hq·s", f" + {a.n_heads}·{seq}") if alibi else (" + s", f" + {seq}"))
    )
    if not fused:
        return _Term(
            "attention (eager)",
            "4·b·s·(Hq + 2Hkv)·D + 4·b·Hq·s² + a·b·s·Hq·D" + flag_formula,
            f"4·{qkv:,} + 4·{batch}·{a.n_heads}·{seq}² + {act:g}·{rows:,}·{a.q_width}" + flag_sub,
            4 * qkv + 4 * batch * a.n_heads * seq * seq + act * rows * a.q_width + flags,
        )
    dropping = a.dropout and not fused_dropout  # no fused kernel on a CPU drops
    if dropping or alibi:  # so does ALiBi's (Hq, s, s) bias: torch's CPU kernels take 2-D or 4-D masks only
        squares = 12 if dropping else 4  # fp32 probabilities (+ fp32 noise and dropped probabilities)
        what = "attention (sdpa math path" + (", dropout" if dropping else "") + (", ALiBi" if alibi else "") + ")"
        return _Term(
            what,
            f"4·b·s·3Hq·D + {squares}·b·Hq·s² + a·b·s·Hq·D" + flag_formula,
            f"4·{rows:,}·3·{a.q_width} + {squares}·{batch}·{a.n_heads}·{seq}² + {act:g}·{rows:,}·{a.q_width}"
            + flag_sub,
            4 * rows * 3 * a.q_width + squares * batch * a.n_heads * seq * seq + act * rows * a.q_width + flags,
        )
    if window:  # a dense window mask: the kernel keeps it and its own output besides the zeroed copy o_proj keeps
        return _Term(
            "attention (fused, dense window mask)",
            "a·b·s·(Hq + 2Hkv)·D + 2·a·b·s·Hq·D + 4·b·Hq·s + a·s² + s",
            f"{act:g}·{qkv:,} + 2·{act:g}·{rows:,}·{a.q_width} + 4·{batch}·{a.n_heads}·{seq} + {act:g}·{seq}² + {seq}",
            act * qkv + 2 * act * rows * a.q_width + 4 * batch * a.n_heads * seq + act * seq * seq + seq,
        )
    return _Term(
        "attention (fused)",
        "a·b·s·(Hq + 2Hkv)·D + a·b·s·Hq·D + 4·b·Hq·s",
        f"{act:g}·{qkv:,} + {act:g}·{rows:,}·{a.q_width} + 4·{batch}·{a.n_heads}·{seq}",
        act * qkv + act * rows * a.q_width + 4 * batch * a.n_heads * seq,
    )


def _expert_slots(a: Arch, rows: int, expert_slots: ExpertSlots) -> tuple[int, str, str]:
    """Rows the experts hold (S), its formula and substitution: routed assignments, or padded capacity."""
    k, e = a.experts_per_token, a.n_experts
    if expert_slots == "routed":
        return k * rows, "k·b·s", f"{k}·{rows:,}"
    if a.capacity_factor is None:  # dropless: every expert padded to every token
        return e * rows, "E·b·s", f"{e}·{rows:,}"
    capacity = min(rows, math.ceil(a.capacity_factor * rows * k / e))
    return e * capacity, "E·min(b·s, ⌈f·b·s·k/E⌉)", f"{e}·{capacity:,}"


def _ffn_terms(a: Arch, rows: int, act: float, expert_slots: ExpertSlots) -> list[_Term]:
    if not a.n_experts:
        saved = 4 if a.ffn_kind == "gated" else 2
        value = saved * act * rows * a.ffn_hidden
        return [_Term("FFN", f"{saved}·a·b·s·F", f"{saved}·{act:g}·{rows:,}·{a.ffn_hidden}", value)]
    slots, slots_formula, slots_sub = _expert_slots(a, rows, expert_slots)
    k, e, d = a.experts_per_token, a.n_experts, a.dim
    experts = _Term(  # gate, up, act(gate), product; the gathered input; which token fills each slot (int64)
        "experts",
        f"S·(4a·F + a·d + 8), S = {slots_formula}",
        f"{slots:,}·(4·{act:g}·{a.ffn_hidden} + {act:g}·{d} + 8), S = {slots_sub}",
        slots * (4 * act * a.ffn_hidden + act * d + 8),
    )
    routing = _Term(  # fp32 expert outputs for the gate weights; router probabilities, top-k, gates, slots, losses
        "routing",
        "b·s·(4k·d + 12E + 32k + 12) + 4E + 12",
        f"{rows:,}·(4·{k}·{d} + 12·{e} + 32·{k} + 12) + 4·{e} + 12",
        rows * (4 * k * d + 12 * e + 32 * k + 12) + 4 * e + 12,
    )
    return [experts, routing]


def _layer_terms(
    a: Arch, batch: int, seq: int, act: float, kernel: dict[str, bool], expert_slots: ExpertSlots
) -> list[_Term]:
    rows = batch * seq
    fused = kernel["fused"]
    attn = _attention_term(a, batch, seq, act, **kernel)
    terms = [*_layer_norms(a, rows, act), attn, *_ffn_terms(a, rows, act, expert_slots)]
    if a.dropout and not fused:  # the softmax keeps its output, the weighted sum the dropped copy
        drop = 5 * batch * a.n_heads * seq * seq
        formula = "5·b·Hq·s² (dropped fp32 probabilities, 1-byte mask)"
        terms.append(_Term("attention dropout (eager)", formula, f"5·{batch}·{a.n_heads}·{seq}²", drop))
    if a.dropout:
        what, formula = "residual dropout masks", "2·b·s·d (1 byte per element, two branches)"
        terms.append(_Term(what, formula, f"2·{rows:,}·{a.dim}", 2.0 * rows * a.dim))
    return terms


def _outside_terms(a: Arch, batch: int, seq: int, act: float, checkpointing: bool) -> list[_Term]:
    rows = batch * seq
    id_rows = rows * (1 + (a.n_token_types > 0)) + seq * (a.n_positions > 0)
    terms = [_Term("token ids", "8·(b·s per id tensor + s positions) (int64)", f"8·{id_rows:,}", 8.0 * id_rows)]
    if a.dropout:  # outside the blocks: kept with checkpointing too
        what = "embedding dropout mask"
        terms.append(_Term(what, "b·s·d (1 byte per element)", f"{rows:,}·{a.dim}", 1.0 * rows * a.dim))
    if a.positions == "rope":
        rope = 2 * seq * a.head_dim * act
        terms.append(_Term("rotary tables", "2·s·D·a (cos, sin)", f"2·{seq}·{a.head_dim}·{act:g}", rope))
    if a.embedding_norm:  # its output is block 0's input, kept by the checkpoint when checkpointing
        terms.append(_norm_term(a, rows, act, 1, "embedding norm", with_output=not checkpointing))
    elif a.layout == "post" and not checkpointing:  # no norm first: block 0's q/k/v projections keep the embeddings
        what = "block 0's input (the embeddings, kept by its q/k/v projections)"
        terms.append(_Term(what, "a·b·s·d", f"{act:g}·{rows:,}·{a.dim}", act * rows * a.dim))
    if a.final_norms:
        terms.append(_norm_term(a, rows, act, a.final_norms, "final norm"))
    elif a.has_lm_head and (checkpointing or a.layout != "post"):  # post-LN: the last block's norm output, counted
        what = "the last block's output (kept by the head)"
        terms.append(_Term(what, "a·b·s·d", f"{act:g}·{rows:,}·{a.dim}", act * rows * a.dim))
    if a.has_lm_head:
        logits = rows * (4.0 * a.vocab_size + 8)
        what = "logits for the loss"
        terms.append(
            _Term(what, "b·s·(4V + 8) (fp32 log-softmax, targets)", f"{rows:,}·(4·{a.vocab_size} + 8)", logits)
        )
    elif checkpointing:  # the loss keeps an fp32 copy of the output, the checkpoint nothing of the last block
        what = "output held by the loss (fp32)"
        terms.append(_Term(what, "4·b·s·d", f"4·{rows:,}·{a.dim}", 4.0 * rows * a.dim))
    else:  # the loss keeps an fp32 copy of the output in place of the last block's own (counted above)
        what = "output held by the loss (fp32, in place of the last block's)"
        terms.append(_Term(what, "(4 − a)·b·s·d", f"(4 − {act:g})·{rows:,}·{a.dim}", (4 - act) * rows * a.dim))
    return terms


def activation_bytes(
    config: Any,
    seq_len: int,
    batch: int,
    *,
    dtype: str | torch.dtype = "bfloat16",
    fused_attention: bool = True,
    checkpointing: bool = False,
    fused_dropout: bool = True,
    fused_masks: bool = False,
    expert_slots: ExpertSlots = "routed",
) -> Result:
    """Bytes autograd keeps for backward after one forward of ``batch`` × ``seq_len`` tokens (see module doc).

    ``fused_dropout=False``: with dropout the fused attention runs torch's SDPA math path, as on a CPU.
    ``fused_masks=True``: the fused kernel applies a window and ALiBi itself (FlashAttention-2's ``window_size``
    and ``alibi_slopes``, tfdojo's tiled backend) and keeps no mask; False: tfdojo's sdpa, which passes them as one.
    ``expert_slots``: a mixture's experts hold the tokens routed to them ("routed", a grouped-GEMM kernel) or
    are padded to their capacity ("padded", tfdojo's reference MoE: every token when dropless).
    """
    check_sizes(seq_len=seq_len, batch=batch)
    if expert_slots not in ExpertSlots.__args__:
        raise ConfigError(f"unknown expert_slots {expert_slots!r}; use one of {ExpertSlots.__args__}")
    a = describe(config)
    a.require_one_stack("activation_bytes")
    act = bytes_per_element(dtype)
    kernel = {"fused": fused_attention, "fused_dropout": fused_dropout, "fused_masks": fused_masks}
    layer = _layer_terms(a, batch, seq_len, act, kernel, expert_slots)
    per_layer = sum(t.value for t in layer)
    steps = [Step(f"per layer: {t.what}", t.formula, t.substituted, t.value, "bytes") for t in layer]
    if checkpointing:
        kept = act * batch * seq_len * a.dim
        steps.append(
            Step("per layer kept (block input)", "a·b·s·d", f"{act:g}·{batch}·{seq_len}·{a.dim}", kept, "bytes")
        )
    else:
        kept = per_layer
        formula = " + ".join(t.what.split(" (")[0] for t in layer)  # each term's name without its note
        steps.append(Step("per layer", formula, " + ".join(f"{t.value:,.0f}" for t in layer), kept, "bytes"))
    outside = _outside_terms(a, batch, seq_len, act, checkpointing)
    steps += [Step(t.what, t.formula, t.substituted, t.value, "bytes") for t in outside]
    parts = {"layers": a.n_layers * kept, **{t.what: t.value for t in outside}}
    value = sum(parts.values())
    steps.append(
        Step("activations", "L·per layer + outside the blocks", f"{a.n_layers}·{kept:,.0f} + …", value, "bytes")
    )
    assumptions = (
        f"activations at {dtype_name(dtype)}; softmax statistics, RMSNorm's upcast and the loss in fp32",
        "the tensors tfdojo's modules save (measured with saved_tensors_hooks); "
        + (f"dropout {a.dropout:g}: a one-byte mask per dropout (torch.native_dropout)" if a.dropout else "no dropout"),
        "eager attention stores the s×s probabilities"
        if not fused_attention
        else "fused attention stores no s×s term, unless torch's SDPA falls back to its math path (below)",
    )
    if fused_attention and fused_masks and (a.positions == "alibi" or a.sliding_window is not None):
        assumptions += ("the fused kernel applies the window or ALiBi itself and keeps no mask",)
    elif fused_attention and a.positions == "alibi":
        assumptions += ("ALiBi's 3-D bias sends torch's SDPA to its math path: s×s probabilities kept (measured)",)
    elif fused_attention and a.sliding_window is not None:
        assumptions += ("the window reaches SDPA as a dense mask, which the kernel keeps (a·s²)",)
    if a.dropout and fused_attention:
        assumptions += (
            "fused attention drops inside the kernel and keeps only its random-number state (FlashAttention); "
            "not measured here (CPU only)"
            if fused_dropout
            else "with dropout, torch's SDPA on a CPU runs its math path and keeps the s×s probabilities (measured)",
        )
    if a.n_experts and expert_slots == "routed":
        assumptions += (
            "a mixture of experts keeps k experts' FFN tensors per token, as a dropless grouped-GEMM kernel does "
            "(MegaBlocks, Gale et al., 2023); tfdojo's reference MoE pads each expert (expert_slots='padded')",
        )
    elif a.n_experts:
        assumptions += ("every expert padded to its capacity, as tfdojo's reference MoE (measured)",)
    return Result("activation memory", value, "bytes", tuple(steps), assumptions, parts)


def train_memory(
    config: Any,
    seq_len: int,
    batch: int,
    *,
    dtype: str | torch.dtype = "bfloat16",
    optimizer: str = "adamw",
    fused_attention: bool = True,
    checkpointing: bool = False,
    fused_dropout: bool = True,
    fused_masks: bool = False,
    expert_slots: ExpertSlots = "routed",
) -> Result:
    """Peak training memory on one device: weights, gradients, fp32 master copy, optimizer moments, activations."""
    if optimizer not in OPTIMIZER_STATES:
        raise ConfigError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZER_STATES)}")
    n = param_count(config).value
    per = bytes_per_element(dtype)
    mixed = dtype_name(dtype) != "float32"
    states = OPTIMIZER_STATES[optimizer]
    kinds = {"fused_attention": fused_attention, "fused_dropout": fused_dropout, "fused_masks": fused_masks}
    kinds |= {"expert_slots": expert_slots}
    acts = activation_bytes(config, seq_len, batch, dtype=dtype, checkpointing=checkpointing, **kinds)
    parts = {
        "weights": n * per,
        "gradients": n * per,
        "master weights": 4.0 * n if mixed else 0.0,
        "optimizer": 4.0 * states * n,
        "activations": acts.value,
    }
    steps = [
        Step("weights", "N × bytes(dtype)", f"{n:,.0f} × {per:g}", parts["weights"], "bytes"),
        Step("gradients", "N × bytes(dtype)", f"{n:,.0f} × {per:g}", parts["gradients"], "bytes"),
        Step(
            "fp32 master weights",
            "4N under mixed precision",
            f"4 × {n:,.0f}" if mixed else "fp32: none",
            parts["master weights"],
            "bytes",
        ),
        Step(
            f"{optimizer} state",
            f"4 × {states} × N (fp32 moments)",
            f"4 × {states} × {n:,.0f}",
            parts["optimizer"],
            "bytes",
        ),
        *acts.steps,
    ]
    if checkpointing:
        full = activation_bytes(config, seq_len, batch, dtype=dtype, **kinds)
        block = full.parts["layers"] / describe(config).n_layers
        parts["recomputed block"] = block
        steps.append(Step("one block recomputed in backward", "full activations of one layer", "", block, "bytes"))
    value = sum(parts.values())
    steps.append(Step("peak", "sum of the parts", " + ".join(f"{v:,.0f}" for v in parts.values()), value, "bytes"))
    assumptions = (
        *acts.assumptions,
        "one device, no sharding (ZeRO/FSDP divide the first four parts by the number of devices)",
        "an upper bound: gradients fill in while activations are freed; allocator slack and temporaries not counted",
    )
    return Result("training memory (peak)", value, "bytes", tuple(steps), assumptions, parts)
