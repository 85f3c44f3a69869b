"""`tfdojo serve`: the OpenAI-compatible server on 127.0.0.1 by default; any other host needs --api-key."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from tfdojo.errors import ConfigError


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse to listen beyond this machine without an API key."""
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"--host {host} would expose the server beyond this machine; set --api-key KEY (clients send "
            "'Authorization: Bearer KEY') or keep the default --host 127.0.0.1"
        )


def serve(
    model: Annotated[str, typer.Option("--model", "-m", help="Bundled name, a .gguf file, or a HF folder.")] = (
        "smollm2-135m-instruct"
    ),
    host: Annotated[str, typer.Option(help="Address to bind; non-loopback needs --api-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8080,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Require 'Authorization: Bearer KEY'.")] = None,
    embed_model: Annotated[
        str | None, typer.Option("--embed-model", help="Encoder for /v1/embeddings ('none' to skip).")
    ] = "all-minilm-l6-v2",
    max_waiting: Annotated[int, typer.Option(min=1, help="Queued requests before 429.")] = 64,
    max_batch: Annotated[int, typer.Option(min=1, help="Requests decoded together.")] = 32,
    kv_blocks: Annotated[int, typer.Option(min=1, help="KV-cache blocks of 16 positions.")] = 1024,
    preemption: Annotated[
        str, typer.Option(help="When KV blocks run out: 'recompute' the preempted request, or 'swap' it to host.")
    ] = "recompute",
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API (chat, completions, embeddings, SSE streaming)."""
    from tfdojo.cli import friendly_errors

    with friendly_errors():
        check_exposure(host, api_key)
        import uvicorn

        import tfdojo
        from tfdojo.infer.server.app import ServerConfig, create_app

        lm = tfdojo.load(model)
        encoder = None if embed_model in (None, "none") else tfdojo.load(embed_model)
        embed_name = None if encoder is None else embed_model
        config = ServerConfig(model, embed_name, api_key, max_waiting, max_batch, kv_blocks, preemption=preemption)
        app = create_app(lm, config, encoder)
        typer.echo(f"serving {model} on http://{host}:{port}/v1 (Ctrl-C or SIGTERM drains and stops)", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    """Add `serve` to the main `tfdojo` app."""
    app.command("serve")(serve)
