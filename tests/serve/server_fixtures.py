"""Start the app under uvicorn in a thread on a free port, for tests that talk to it with the openai client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import uvicorn

from tfdojo.infer.language_model import LanguageModel
from tfdojo.infer.server.app import ServerConfig, create_app
from tfdojo.models.llama import Llama, LlamaConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_lm(tokenizer, max_seq_len: int = 512) -> LanguageModel:
    """A random 2-layer Llama over a real tokenizer: fast, and it exercises chat templates and detokenizing."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        dim=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        ffn_hidden=64,
        max_seq_len=max_seq_len,
        tie_embeddings=False,
    )
    return LanguageModel(config, Llama(config).eval(), tokenizer)


@contextmanager
def running_server(lm, config: ServerConfig, encoder=None) -> Iterator[tuple[str, object]]:
    """(base URL of /v1, the app) while a uvicorn server runs the app on 127.0.0.1."""
    app = create_app(lm, config, encoder)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        assert time.time() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1", app
    finally:
        server.should_exit = True
        thread.join(timeout=30)
