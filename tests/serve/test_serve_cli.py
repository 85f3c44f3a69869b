"""`tfdojo serve`: a non-loopback host without an API key is refused before anything loads; SIGTERM lets an
open stream finish (drain) and then the process exits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import openai
import pytest
from server_fixtures import free_port
from typer.testing import CliRunner

from tfdojo.cli import app
from tfdojo.infer.server.cli import is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_a_public_host_needs_an_api_key():
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--model", "no-such-model"])
    assert result.exit_code == 1
    assert "--api-key" in result.output and "Traceback" not in result.output


SERVER = textwrap.dedent(
    """
    import sys, torch, uvicorn
    sys.path.insert(0, {here!r})
    from server_fixtures import tiny_lm
    from tfdojo.infer.server.app import ServerConfig, create_app

    class Bytes:
        eos_token_ids = [256]
        vocab_size = 257
        def encode(self, text): return list(text.encode())
        def decode(self, ids): return bytes(i for i in ids if i < 256).decode(errors="replace")

    torch.set_num_threads(1)
    app = create_app(tiny_lm(Bytes()), ServerConfig("tiny", kv_blocks=64))
    uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
    """
)


def test_sigterm_drains_open_streams_then_exits():
    port = free_port()
    code = SERVER.format(here=os.path.dirname(__file__), port=port)
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
        deadline = time.time() + 120
        while True:
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                assert time.time() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        stream = client.completions.create(model="tiny", prompt="drain", max_tokens=200, temperature=0, stream=True)
        chunks = iter(stream)
        next(chunks)
        proc.send_signal(signal.SIGTERM)  # while the stream is still open
        rest = list(chunks)
        assert rest[-1].choices[0].finish_reason == "length"  # the open request ran to the end
        # uvicorn re-raises the signal once it has shut down, so the exit status still says "terminated".
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
