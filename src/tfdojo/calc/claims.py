"""Interview claims checked by computation: each claim is data, and its verdict comes from running the calculators.

A claim has one or more cases. A case names a calculator, its arguments, and what the claim says about the
answer (about equal to a number, at most, at least — the number itself may come from another calculator). The
verdict is computed: every case holds → true, none holds → false, some hold → depends. The data live in
``calc/data/claims.toml``; ``render_markdown`` writes ``docs/claims.md``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from tfdojo.calc import hardware, parallel, scaling
from tfdojo.calc.flops import flops_per_token
from tfdojo.calc.kv_cache import inference_memory, kv_cache_bytes
from tfdojo.calc.memory import train_memory, weight_bytes
from tfdojo.calc.params import param_count
from tfdojo.calc.result import Result
from tfdojo.calc.roofline import roofline
from tfdojo.errors import ConfigError
from tfdojo.models.presets import preset_config

VERDICTS = ("true", "false", "depends")
COMPARISONS = ("approx", "at_most", "at_least")


def _model_call(fn: Callable[..., Result]) -> Callable[..., Result]:
    """Adapt a calculator taking a config: ``model`` names a preset, ``overrides`` change fields of its config."""

    def call(model: str, overrides: dict[str, Any] | None = None, **kwargs: Any) -> Result:
        config = dataclasses.replace(preset_config(model), **(overrides or {}))
        return fn(config, **kwargs)

    return call


def _on_gpu(fn: Callable[..., Result]) -> Callable[..., Result]:
    """Adapt a roofline taking bandwidth and peak: ``gpu`` names a hardware preset (dense bf16 peak, HBM)."""

    def call(model: str, gpu: str, **kwargs: Any) -> Result:
        acc = hardware.get_accelerator(gpu)
        return fn(preset_config(model), bandwidth=acc.hbm_bytes_per_s, peak_flops=acc.flops("bfloat16"), **kwargs)

    return call


def _activations(layers: int, hidden: int, heads: int, seq_len: int, micro_batch: int = 1, **options: Any) -> Result:
    return parallel.activation_memory(parallel.ActivationShape(layers, hidden, heads, seq_len, micro_batch), **options)


CALCULATORS: dict[str, Callable[..., Result]] = {
    "params": _model_call(param_count),
    "flops_per_token": _model_call(flops_per_token),
    "kv_cache_bytes": _model_call(kv_cache_bytes),
    "weight_bytes": _model_call(weight_bytes),
    "inference_memory": _model_call(inference_memory),
    "train_memory": _model_call(train_memory),
    "roofline": _on_gpu(roofline),
    "training_compute": scaling.training_compute,
    "chinchilla": scaling.chinchilla,
    "chinchilla_tokens": scaling.chinchilla_tokens,
    "predicted_loss": scaling.predicted_loss,
    "compute_optimal_fit": scaling.compute_optimal_fit,
    "zero_memory": parallel.zero_memory,
    "dp_comm": parallel.dp_comm,
    "tp_comm": parallel.tp_comm,
    "pp_bubble": parallel.pp_bubble,
    "pp_comm": parallel.pp_comm,
    "cp_comm": parallel.cp_comm,
    "activation_memory": _activations,
    "ridge_point": hardware.ridge_point,
    "peak_ratio": hardware.peak_ratio,
}


@dataclass(frozen=True)
class Call:
    """A calculator by name with its keyword arguments; ``part`` picks one entry of the result's breakdown."""

    name: str
    args: dict[str, Any]
    part: str | None = None

    def __post_init__(self) -> None:
        if self.name not in CALCULATORS:
            raise ConfigError(f"claims: unknown calculator {self.name!r}; known: {', '.join(sorted(CALCULATORS))}")

    def run(self) -> tuple[Result, float]:
        """Run the calculator: its Result and the number the claim looks at (the value, or the chosen part)."""
        result = CALCULATORS[self.name](**self.args)
        if self.part is None:
            return result, result.value
        if self.part not in result.parts:
            raise ConfigError(f"claims: {self} has no part {self.part!r}; it has {sorted(result.parts)}")
        return result, result.parts[self.part]

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.name}({args})" + (f".{self.part}" if self.part else "")


@dataclass(frozen=True)
class Case:
    """One situation a claim is checked in: value = call (÷ per), compared with a target number or call."""

    label: str
    call: Call
    comparison: str
    target: float | Call
    per: Call | None = None
    tolerance: float = 0.1  # relative, for "approx"

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise ConfigError(f"claims: comparison must be one of {COMPARISONS}, got {self.comparison!r}")
        if self.tolerance <= 0:
            raise ConfigError(f"claims: tolerance must be positive, got {self.tolerance}")


@dataclass(frozen=True)
class Claim:
    """A statement people make, the cases that test it, and the verdict recorded for it."""

    id: str
    topic: str
    statement: str
    verdict: str
    why: str
    cases: tuple[Case, ...]

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ConfigError(f"claim {self.id}: verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if not self.cases:
            raise ConfigError(f"claim {self.id}: give at least one case")


@dataclass(frozen=True)
class CaseOutcome:
    """A case evaluated: the computed value, the number it was compared with, and whether the claim holds."""

    case: Case
    value: float
    target: float
    holds: bool
    result: Result


@dataclass(frozen=True)
class Verdict:
    """A claim evaluated: the computed verdict and each case's numbers."""

    claim: Claim
    computed: str
    outcomes: tuple[CaseOutcome, ...]

    @property
    def agrees(self) -> bool:
        """Whether the computed verdict is the one recorded in the data file."""
        return self.computed == self.claim.verdict


def _call(spec: Any, where: str) -> Call:
    if not isinstance(spec, dict) or "call" not in spec:
        raise ConfigError(f"claims: {where} must be a table with a 'call' key and optional 'args', got {spec!r}")
    return Call(spec["call"], dict(spec.get("args", {})), spec.get("part"))


def _case(raw: dict[str, Any], claim_id: str) -> Case:
    where = f"claim {claim_id}, case {raw.get('label', '?')!r}"
    try:
        target = raw["target"]
        return Case(
            label=raw["label"],
            call=_call(raw, where),
            comparison=raw["comparison"],
            target=_call(target, where + " target") if isinstance(target, dict) else float(target),
            per=_call(raw["per"], where + " per") if "per" in raw else None,
            tolerance=float(raw.get("tolerance", 0.1)),
        )
    except KeyError as e:
        raise ConfigError(f"claims: {where} lacks the field {e}; see calc/data/claims.toml for the layout") from None


def parse_claims(text: str) -> tuple[Claim, ...]:
    """Claims from TOML text (``[[claims]]`` tables, each with ``[[claims.cases]]``)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"claims file is not valid TOML: {e}") from None
    claims = []
    for raw in data.get("claims", []):
        try:
            cases = tuple(_case(c, raw["id"]) for c in raw["cases"])
            claims.append(Claim(raw["id"], raw["topic"], raw["statement"], raw["verdict"], raw["why"], cases))
        except KeyError as e:
            raise ConfigError(f"claims: claim {raw.get('id', '?')!r} lacks the field {e}") from None
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"claims: ids must be unique, repeated: {sorted({i for i in ids if ids.count(i) > 1})}")
    return tuple(claims)


def load_claims() -> tuple[Claim, ...]:
    """The claims shipped with tfdojo (``tfdojo/calc/data/claims.toml``)."""
    return parse_claims(resources.files("tfdojo.calc").joinpath("data/claims.toml").read_text(encoding="utf-8"))


def evaluate_case(case: Case) -> CaseOutcome:
    """Run a case's calculators and compare."""
    result, value = case.call.run()
    if case.per:
        value /= case.per.run()[1]
    target = case.target.run()[1] if isinstance(case.target, Call) else case.target
    if case.comparison == "approx":
        holds = abs(value - target) <= case.tolerance * abs(target)
    elif case.comparison == "at_most":
        holds = value <= target
    else:
        holds = value >= target
    return CaseOutcome(case, value, target, holds, result)


def evaluate(claim: Claim) -> Verdict:
    """The computed verdict of a claim: true if every case holds, false if none does, depends otherwise."""
    outcomes = tuple(evaluate_case(c) for c in claim.cases)
    held = sum(o.holds for o in outcomes)
    computed = "true" if held == len(outcomes) else "false" if held == 0 else "depends"
    return Verdict(claim, computed, outcomes)


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1e4 and abs(x) < 1e12 else f"{x:.4g}"


SYMBOL = {"approx": "≈", "at_most": "≤", "at_least": "≥"}


def render_markdown(verdicts: tuple[Verdict, ...]) -> str:
    """docs/claims.md: every claim, its verdict, and the numbers behind it."""
    lines = [
        "# Claims, checked",
        "",
        "Generated by `tfdojo calc claims --markdown` from `src/tfdojo/calc/data/claims.toml`; do not edit by hand.",
        "Each verdict is computed by running the calculators: true when every case holds, false when none does,",
        "depends when some do. `approx` means within the stated relative tolerance.",
        "",
        "| # | claim | verdict |",
        "|---|---|---|",
    ]
    lines += [f"| {i} | [{v.claim.statement}](#{v.claim.id}) | **{v.computed}** |" for i, v in enumerate(verdicts, 1)]
    for v in verdicts:
        c = v.claim
        lines += ["", f"## {c.id}", "", f"> {c.statement}", "", f"**Verdict: {v.computed}.** {c.why}", ""]
        lines += ["| case | computed | claim | holds | calculator |", "|---|---|---|---|---|"]
        for o in v.outcomes:
            k = o.case
            unit = "" if k.per else f" {o.result.unit}"
            tol = f" (±{k.tolerance:.0%})" if k.comparison == "approx" else ""
            call = f"`{k.call}`" + (f" ÷ `{k.per}`" if k.per else "")
            lines.append(
                f"| {k.label} | {_number(o.value)}{unit} | {SYMBOL[k.comparison]} {_number(o.target)}{tol} | "
                f"{'yes' if o.holds else 'no'} | {call} |"
            )
    return "\n".join(lines) + "\n"
