"""`tfdojo calc …`: every calculator on the command line, printing the value, its derivation and its assumptions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tfdojo.calc.result import Result

app = typer.Typer(
    help="Calculators that show their work: params, FLOPs, memory, KV cache, scaling laws, parallel plans, claims.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(width=160)

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="A preset name (see `tfdojo calc presets`), a Hugging Face folder or its config.json."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print Result.to_dict() as JSON.")]
SeqOpt = Annotated[int, typer.Option("--seq-len", "-s", min=1, help="Sequence length in tokens.")]

UNITS = {"bytes": ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))}


@contextmanager
def _errors() -> Iterator[None]:
    from tfdojo.cli import friendly_errors  # imported late: tfdojo.cli mounts this module's app

    with friendly_errors():
        yield


def human(value: float, unit: str) -> str:
    """A value with its unit, scaled for reading: bytes in binary multiples, counts with T/B/M/K suffixes."""
    for size, name in UNITS.get(unit, ()):
        if abs(value) >= size:
            return f"{value / size:,.2f} {name} ({value:,.0f} bytes)"
    if unit in ("params", "tokens"):
        for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(value) >= size:
                return f"{value / size:,.2f}{suffix} {unit} ({value:,.0f})"
    if unit == "fraction":
        return f"{value:.2%}"
    return f"{value:.4g} {unit}".rstrip()


def show(result: Result, as_json: bool) -> None:
    """Print a Result: JSON, or the value, the steps as a table, and the assumptions."""
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
        return
    out.print(f"[bold]{result.name}[/]: [green]{human(result.value, result.unit)}[/]", highlight=False)
    table = Table(show_header=True, header_style="bold")
    for col in ("step", "formula", "numbers", "value"):
        table.add_column(col, overflow="fold")
    for s in result.steps:
        table.add_row(s.what, s.formula, s.substituted, human(s.value, s.unit))
    out.print(table)
    if result.parts:
        out.print("[dim]parts[/] " + "  ".join(f"{k}: {v:.4g}" for k, v in result.parts.items()), highlight=False)
    for a in result.assumptions:
        out.print(f"[dim]• {a}[/]", highlight=False)


def _config(model: str) -> Any:
    from tfdojo.calc.describe import describe

    return describe(model)


def _json_rows(rows: list[dict[str, Any]]) -> None:
    out.print_json(json.dumps(rows, default=str))


@app.command()
def params(model: ModelOpt, as_json: JsonOpt = False) -> None:
    """Parameters of a preset, by component."""
    from tfdojo.calc.params import param_count

    with _errors():
        show(param_count(_config(model)), as_json)


@app.command()
def flops(
    model: ModelOpt,
    seq_len: SeqOpt = 2048,
    mode: Annotated[str, typer.Option(help="train, forward, prefill or decode.")] = "train",
    as_json: JsonOpt = False,
) -> None:
    """FLOPs per token (training, forward, prefill or decode)."""
    from tfdojo.calc.flops import flops_per_token

    with _errors():
        show(flops_per_token(_config(model), seq_len, mode), as_json)  # type: ignore[arg-type]


DTypeOpt = Annotated[str, typer.Option(help="Element type: float32, bfloat16, float16, int8, q4_0, ….")]
BatchOpt = Annotated[int, typer.Option("--batch", "-b", min=1, help="Sequences in the batch.")]


@app.command()
def kv(
    model: ModelOpt,
    seq_len: SeqOpt = 4096,
    batch: BatchOpt = 1,
    dtype: DTypeOpt = "bfloat16",
    as_json: JsonOpt = False,
) -> None:
    """Bytes of the key/value cache for a batch of sequences."""
    from tfdojo.calc.kv_cache import kv_cache_bytes

    with _errors():
        show(kv_cache_bytes(_config(model), seq_len, batch, dtype), as_json)


memory_app = typer.Typer(help="Memory for training or for serving.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")


@memory_app.command("train")
def memory_train(
    model: ModelOpt,
    seq_len: SeqOpt = 4096,
    batch: BatchOpt = 1,
    dtype: DTypeOpt = "bfloat16",
    optimizer: Annotated[str, typer.Option(help="Optimizer whose states are counted (e.g. adamw, sgd).")] = "adamw",
    checkpointing: Annotated[bool, typer.Option(help="Activation checkpointing per block.")] = False,
    dropout: Annotated[
        float | None, typer.Option(help="Training dropout rate, whose masks count (default: the model's, often 0).")
    ] = None,
    fused_masks: Annotated[
        bool, typer.Option(help="The attention kernel applies a window or ALiBi itself (FlashAttention-2): no mask.")
    ] = False,
    expert_slots: Annotated[
        str, typer.Option(help="A mixture's experts hold the routed tokens (routed) or pad to capacity (padded).")
    ] = "routed",
    as_json: JsonOpt = False,
) -> None:
    """Peak training memory on one device: weights, gradients, master copy, optimizer states, activations."""
    from dataclasses import replace

    from tfdojo.calc.memory import train_memory

    with _errors():
        config = _config(model) if dropout is None else replace(_config(model), dropout=dropout)
        kinds = {"fused_masks": fused_masks, "expert_slots": expert_slots}
        result = train_memory(
            config, seq_len, batch, dtype=dtype, optimizer=optimizer, checkpointing=checkpointing, **kinds
        )
        show(result, as_json)


@memory_app.command("infer")
def memory_infer(
    model: ModelOpt,
    seq_len: SeqOpt = 4096,
    batch: BatchOpt = 1,
    weight_dtype: DTypeOpt = "bfloat16",
    kv_dtype: DTypeOpt = "bfloat16",
    as_json: JsonOpt = False,
) -> None:
    """Serving memory: weights at a dtype or quantization plus the KV cache."""
    from tfdojo.calc.kv_cache import inference_memory

    with _errors():
        result = inference_memory(_config(model), seq_len, batch, weight_dtype=weight_dtype, kv_dtype=kv_dtype)
        show(result, as_json)


@app.command()
def roofline(
    model: ModelOpt,
    seq_len: Annotated[
        int, typer.Option("--seq-len", "-s", min=1, help="Context (decode) or prompt (prefill).")
    ] = 4096,
    batch: BatchOpt = 1,
    gpu: Annotated[str, typer.Option(help="Accelerator preset whose peaks bound the step.")] = "h100-80gb",
    prefill: Annotated[bool, typer.Option("--prefill", help="Bound prefill instead of decode.")] = False,
    measure: Annotated[bool, typer.Option("--measure", help="Use this machine's measured peaks instead.")] = False,
    dtype: DTypeOpt = "bfloat16",
    as_json: JsonOpt = False,
) -> None:
    """Ceiling on decode (or prefill) tokens/s: max(bytes ÷ bandwidth, FLOPs ÷ peak) per step."""
    from tfdojo.calc import roofline as rl
    from tfdojo.calc.hardware import get_accelerator

    with _errors():
        if measure:
            measured = rl.measure()
            bandwidth, peak = measured.bandwidth.value, measured.matmul.value
            if not as_json:
                show(measured.bandwidth, as_json=False)
                show(measured.matmul, as_json=False)
        else:
            acc = get_accelerator(gpu)
            # fp32 runs on the fp32 units; 16-bit and quantized weights are multiplied on the bf16 tensor cores
            bandwidth, peak = acc.hbm_bytes_per_s, acc.flops("float32" if dtype == "float32" else "bfloat16")
        result = rl.roofline(
            _config(model),
            seq_len,
            batch,
            mode="prefill" if prefill else "decode",
            bandwidth=bandwidth,
            peak_flops=peak,
            weight_dtype=dtype,
            kv_dtype=dtype,
        )
        show(result, as_json)


@app.command()
def chinchilla(
    flops_budget: Annotated[float, typer.Argument(metavar="FLOPS", help="Training compute budget, e.g. 5.76e23.")],
    fit: Annotated[
        bool, typer.Option("--fit", help="Minimise the parametric loss fit instead of 20 tokens/param.")
    ] = False,
    tokens_per_param: Annotated[float, typer.Option(help="Tokens per parameter for the rule.")] = 20.0,
    as_json: JsonOpt = False,
) -> None:
    """Compute-optimal parameters and tokens for a FLOP budget (Hoffmann et al., 2022)."""
    from tfdojo.calc.scaling import chinchilla as rule
    from tfdojo.calc.scaling import compute_optimal_fit

    with _errors():
        show(compute_optimal_fit(flops_budget) if fit else rule(flops_budget, tokens_per_param), as_json)


@app.command()
def loss(
    params_: Annotated[float, typer.Option("--params", help="Parameters N, e.g. 70e9.")],
    tokens: Annotated[float, typer.Option(help="Training tokens D, e.g. 1.4e12.")],
    as_json: JsonOpt = False,
) -> None:
    """Loss predicted by the Chinchilla fit L(N, D) = E + A/N^α + B/D^β."""
    from tfdojo.calc.scaling import predicted_loss

    with _errors():
        show(predicted_loss(params_, tokens), as_json)


@app.command()
def plan(
    model: ModelOpt,
    gpus: Annotated[int, typer.Option(min=1, help="Number of GPUs.")],
    gpu: Annotated[str, typer.Option(help="Accelerator preset (see `tfdojo calc hardware`).")] = "h100-80gb",
    seq_len: SeqOpt = 4096,
    global_batch: Annotated[int, typer.Option(min=1, help="Sequences per optimizer step.")] = 1024,
    micro_batch: Annotated[int, typer.Option(min=1, help="Sequences per micro-batch.")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Propose a training layout (TP × PP × DP, ZeRO stage, recomputation) that fits, and show its cost."""
    from tfdojo.calc.planner import TrainingJob, propose_plan

    with _errors():
        job = TrainingJob(seq_len=seq_len, global_batch=global_batch, micro_batch=micro_batch)
        show(propose_plan(model, gpus, gpu, job).to_result(), as_json)


@app.command()
def presets(as_json: JsonOpt = False) -> None:
    """The published model presets and their sources."""
    from tfdojo.models.presets import PRESETS

    rows = [
        {"name": p.name, "family": p.family, "published_params": p.published_params, "source": p.source}
        for p in PRESETS.values()
    ]
    if as_json:
        _json_rows(rows)
        return
    table = Table(title="model presets")
    for col in ("name", "family", "published params", "source"):
        table.add_column(col, overflow="fold")
    for r in rows:
        count = f"{r['published_params']:,}" if r["published_params"] else "—"
        table.add_row(r["name"], r["family"], count, r["source"])
    out.print(table)


@app.command()
def hardware(as_json: JsonOpt = False) -> None:
    """Accelerator presets: memory, dense bf16 peak, HBM and NVLink bandwidth, ridge point, source."""
    from tfdojo.calc.hardware import HARDWARE

    rows = [
        {
            "name": a.name,
            "description": a.description,
            "memory_bytes": a.memory_bytes,
            "peak_flops": a.peak_flops,
            "hbm_bytes_per_s": a.hbm_bytes_per_s,
            "nvlink_bytes_per_s": a.nvlink_bytes_per_s,
            "source": a.source,
        }
        for a in HARDWARE.values()
    ]
    if as_json:
        _json_rows(rows)
        return
    table = Table(title="accelerators (dense peaks)")
    for col in ("name", "memory", "bf16 TFLOP/s", "HBM TB/s", "NVLink GB/s", "ridge FLOP/B", "source"):
        table.add_column(col, overflow="fold")
    for a in HARDWARE.values():
        table.add_row(
            a.name,
            f"{a.memory_bytes / 2**30:.0f} GiB",
            f"{a.flops('bfloat16') / 1e12:g}",
            f"{a.hbm_bytes_per_s / 1e12:.3g}",
            f"{a.nvlink_bytes_per_s / 1e9:g}",
            f"{a.flops('bfloat16') / a.hbm_bytes_per_s:.0f}",
            a.source,
        )
    out.print(table)


@app.command()
def claims(
    markdown: Annotated[bool, typer.Option("--markdown", help="Print docs/claims.md.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check the interview claims by computation; exit 1 if a computed verdict differs from the recorded one."""
    from tfdojo.calc.claims import evaluate, load_claims, render_markdown

    with _errors():
        verdicts = tuple(evaluate(c) for c in load_claims())
    if markdown:
        typer.echo(render_markdown(verdicts), nl=False)
    elif as_json:
        _json_rows(
            [
                {
                    "id": v.claim.id,
                    "statement": v.claim.statement,
                    "recorded": v.claim.verdict,
                    "computed": v.computed,
                    "cases": [
                        {"label": o.case.label, "value": o.value, "target": o.target, "holds": o.holds}
                        for o in v.outcomes
                    ],
                }
                for v in verdicts
            ]
        )
    else:
        table = Table(title="claims")
        for col in ("id", "claim", "verdict", "agrees"):
            table.add_column(col, overflow="fold")
        for v in verdicts:
            table.add_row(v.claim.id, v.claim.statement, v.computed, "yes" if v.agrees else "[red]NO[/]")
        out.print(table)
    if not all(v.agrees for v in verdicts):
        raise typer.Exit(1)
