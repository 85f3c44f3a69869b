"""Scaling laws: training compute C ≈ 6ND, the Chinchilla compute-optimal split, and the parametric loss fit.

Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models": for a fixed budget, parameters N and
tokens D should grow together, about 20 tokens per parameter. Their approach 3 fits
    L(N, D) = E + A / N^α + B / D^β
and minimising it under C = 6ND gives N_opt = G (C/6)^a, D_opt = G⁻¹ (C/6)^b with
    G = (αA / βB)^(1/(α+β)),  a = β/(α+β),  b = α/(α+β).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tfdojo.calc.result import Result, Step
from tfdojo.errors import ConfigError

TOKENS_PER_PARAM = 20.0  # Hoffmann et al. (2022), Table 3: ~20 tokens per parameter at every budget


@dataclass(frozen=True)
class LossFit:
    """The constants of L(N, D) = E + A/N^α + B/D^β."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str

    def __post_init__(self) -> None:
        if min(self.A, self.B, self.alpha, self.beta) <= 0:
            raise ConfigError(f"A, B, α and β must be positive, got {self}")


# Hoffmann et al. (2022), section 3.3 and equation (10): E=1.69, A=406.4, B=410.7, α=0.34, β=0.28.
HOFFMANN = LossFit(1.69, 406.4, 410.7, 0.34, 0.28, "Hoffmann et al. (2022), approach 3, eq. (10)")


def _positive(**values: float) -> None:
    for name, v in values.items():
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ConfigError(f"{name} must be a positive finite number, got {v!r}")


def training_compute(params: float, tokens: float) -> Result:
    """Training FLOPs C ≈ 6·N·D: 2 FLOPs per parameter per token forward, 4 backward (Kaplan et al., 2020)."""
    _positive(params=params, tokens=tokens)
    value = 6.0 * params * tokens
    return Result(
        name="training compute",
        value=value,
        unit="FLOP",
        steps=(Step("C", "6 · N · D", f"6 · {params:.4g} · {tokens:.4g}", value, "FLOP"),),
        assumptions=(
            "dense model; attention FLOPs (∝ context length) left out, which is fair when d_model ≫ seq_len / 6",
            "no activation recomputation (with full recomputation it is ≈ 8ND)",
        ),
    )


def chinchilla_tokens(params: float, tokens_per_param: float = TOKENS_PER_PARAM) -> Result:
    """Compute-optimal training tokens for a model of ``params`` parameters: D = r·N."""
    _positive(params=params, tokens_per_param=tokens_per_param)
    tokens = tokens_per_param * params
    return Result(
        name="compute-optimal tokens (Chinchilla rule)",
        value=tokens,
        unit="tokens",
        steps=(Step("D", "r · N", f"{tokens_per_param:g} · {params:.4g}", tokens, "tokens"),),
        assumptions=(f"r = {tokens_per_param:g} tokens per parameter (Hoffmann et al., 2022)",),
    )


def chinchilla(flops: float, tokens_per_param: float = TOKENS_PER_PARAM) -> Result:
    """Compute-optimal parameters (value) and tokens (parts) for a FLOP budget, from C = 6ND and D = r·N."""
    _positive(flops=flops, tokens_per_param=tokens_per_param)
    params = math.sqrt(flops / (6.0 * tokens_per_param))
    data = chinchilla_tokens(params, tokens_per_param)
    return Result(
        name="compute-optimal model size (Chinchilla rule)",
        value=params,
        unit="params",
        steps=(
            Step("N", "√(C / (6 · r))", f"√({flops:.4g} / (6 · {tokens_per_param:g}))", params, "params"),
            *data.steps,
            Step("check C", "6 · N · D", f"6 · {params:.4g} · {data.value:.4g}", 6.0 * params * data.value, "FLOP"),
        ),
        assumptions=(*data.assumptions, "C = 6ND (no attention FLOPs, no recomputation)"),
        parts={"params": params, "tokens": data.value},
    )


def predicted_loss(params: float, tokens: float, fit: LossFit = HOFFMANN) -> Result:
    """Pre-training loss (nats/token on MassiveText) predicted by the parametric fit L(N, D)."""
    _positive(params=params, tokens=tokens)
    model_term = fit.A / params**fit.alpha
    data_term = fit.B / tokens**fit.beta
    value = fit.E + model_term + data_term
    return Result(
        name="predicted loss",
        value=value,
        unit="nats/token",
        steps=(
            Step("model term", "A / N^α", f"{fit.A} / {params:.4g}^{fit.alpha}", model_term, "nats"),
            Step("data term", "B / D^β", f"{fit.B} / {tokens:.4g}^{fit.beta}", data_term, "nats"),
            Step("L", "E + A/N^α + B/D^β", f"{fit.E} + {model_term:.4f} + {data_term:.4f}", value, "nats/token"),
        ),
        assumptions=(
            f"constants from {fit.source}",
            "the fit is for MassiveText and the Chinchilla tokenizer; other data give other constants",
        ),
        parts={"irreducible": fit.E, "finite model": model_term, "finite data": data_term},
    )


def compute_optimal_fit(flops: float, fit: LossFit = HOFFMANN) -> Result:
    """Parameters (value) and tokens (parts) minimising the parametric L(N, D) subject to 6ND = C."""
    _positive(flops=flops)
    g = (fit.alpha * fit.A / (fit.beta * fit.B)) ** (1.0 / (fit.alpha + fit.beta))
    a = fit.beta / (fit.alpha + fit.beta)
    b = fit.alpha / (fit.alpha + fit.beta)
    params = g * (flops / 6.0) ** a
    tokens = (flops / 6.0) ** b / g
    loss = predicted_loss(params, tokens, fit)
    return Result(
        name="compute-optimal model size (parametric fit)",
        value=params,
        unit="params",
        steps=(
            Step(
                "G",
                "(αA / βB)^(1/(α+β))",
                f"({fit.alpha}·{fit.A} / {fit.beta}·{fit.B})^(1/{fit.alpha + fit.beta:g})",
                g,
            ),
            Step(
                "a, b",
                "β/(α+β), α/(α+β)",
                f"{fit.beta}/{fit.alpha + fit.beta:g}, {fit.alpha}/{fit.alpha + fit.beta:g}",
                a,
            ),
            Step("N_opt", "G · (C/6)^a", f"{g:.4f} · ({flops:.4g}/6)^{a:.4f}", params, "params"),
            Step("D_opt", "(C/6)^b / G", f"({flops:.4g}/6)^{b:.4f} / {g:.4f}", tokens, "tokens"),
            *loss.steps,
        ),
        assumptions=(
            *loss.assumptions,
            "the rounded published constants put N_opt below the paper's own approach-3 figure (about 40B "
            "for Gopher's 5.76e23 FLOPs); Besiroglu et al. (2024) re-fit the data and discuss the gap",
        ),
        parts={"params": params, "tokens": tokens, "loss": loss.value},
    )
