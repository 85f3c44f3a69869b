"""`tfdojo lab list | run NAME | run --all`: run an interview claim and get its verdict, numbers and figure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tfdojo.errors import ConfigError, TfdojoError
from tfdojo.lab.catalog import EXPERIMENTS, experiment
from tfdojo.lab.experiment import Experiment

app = typer.Typer(help="Experiments that answer interview questions by running them.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@app.command("list")
def list_experiments(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """List the experiments: name, claim, the weights they load, the questions they answer."""
    if as_json:
        rows = [
            {"name": e.name, "claim": e.claim, "method": e.method, "weights": e.weights, "questions": list(e.questions)}
            for e in EXPERIMENTS
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(show_lines=True)
    for column in ("name", "claim", "weights"):
        table.add_column(column)
    for e in EXPERIMENTS:
        table.add_row(e.name, escape(e.claim), e.weights)
    out.print(table)


def _run_one(e: Experiment, folder: Path, quick: bool) -> bool:
    with err.status(f"running {e.name}…"):
        result = e.run(folder, quick=quick)
    (folder / f"{e.name}.json").write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    verdict = "[green]holds[/]" if result.holds else "[bold red]does not hold[/]"
    out.print(f"{e.name}: {verdict} ({result.seconds:.0f} s) → {escape(str(folder / e.name))}.json", highlight=False)
    return result.holds


@app.command("run")
def run(
    name: Annotated[str | None, typer.Argument(help="Experiment name (see `tfdojo lab list`)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every experiment")] = False,
    folder: Annotated[Path, typer.Option("--out", help="Folder for NAME.json and NAME.png")] = Path("lab-results"),
    quick: Annotated[bool, typer.Option("--quick", help="The small version used by the tests")] = False,
) -> None:
    """Run one experiment (or --all); write DIR/NAME.json and DIR/NAME.png; exit 1 if a claim does not hold."""
    try:
        if all_ == (name is not None):
            raise ConfigError("give one experiment NAME or --all (see `tfdojo lab list`)")
        chosen = list(EXPERIMENTS) if all_ else [experiment(name or "")]
        folder.mkdir(parents=True, exist_ok=True)
        verdicts = [_run_one(e, folder, quick) for e in chosen]
    except TfdojoError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        raise typer.Exit(1) from None
    if not all(verdicts):
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    """Mount as `tfdojo lab`."""
    root.add_typer(app, name="lab", help="Experiments that answer interview questions by running them.")
