"""`tfdojo web`: serve the trainer on 127.0.0.1:8000 and open it in the browser."""

from __future__ import annotations

import threading
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from tfdojo.app.config import DEFAULT_HOST, DEFAULT_PORT, WebConfig
from tfdojo.lab.links import LAB_DIR
from tfdojo.practice.cli import CrossOpt, JudgeModelOpt, JudgeOpt, JudgeTimeoutOpt
from tfdojo.practice.grading.judge import JudgeConfig


def web(
    host: Annotated[str, typer.Option(help="Address to listen on; non-loopback needs --token.")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="TCP port.")] = DEFAULT_PORT,
    token: Annotated[str | None, typer.Option(help="Secret the browser must present (open with ?token=…).")] = None,
    browser: Annotated[bool, typer.Option("--browser/--no-browser", help="Open the trainer in a browser.")] = True,
    data_dir_: Annotated[Path | None, typer.Option("--data-dir", help="Folder of progress.sqlite3.")] = None,
    bank_dir: Annotated[Path | None, typer.Option("--bank", help="A folder of question .toml files.")] = None,
    lab_dir: Annotated[Path, typer.Option("--lab-dir", help="Where `tfdojo lab run` wrote its figures.")] = LAB_DIR,
    cross: CrossOpt = False,
    judge: JudgeOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_timeout: JudgeTimeoutOpt = 60.0,
) -> None:
    """The trainer in the browser: map, cards, timed sessions, coding, mock interviews, history, export."""
    from tfdojo.cli import friendly_errors  # late: tfdojo.cli mounts this command

    with friendly_errors():
        import uvicorn

        from tfdojo.app.server import create_app

        second = JudgeConfig.from_options(judge, judge_model, judge_timeout) if judge else None
        config = WebConfig(
            host=host,
            port=port,
            token=token,
            data_dir=data_dir_,
            bank_dir=bank_dir,
            judge=second,
            cross=cross,
            lab_dir=lab_dir,
        )
        app = create_app(config)
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
        if token:
            url += f"?token={token}"
        typer.echo(f"tfdojo trainer at {url} (Ctrl-C stops it)", err=True)
        if browser:
            threading.Timer(1.0, webbrowser.open, args=(url,)).start()
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def register(app: typer.Typer) -> None:
    """Add `web` to the main app."""
    app.command("web")(web)
