"""`tfdojo transcribe FILE` (our Whisper) and `tfdojo say TEXT` (Piper): speech in and out on the command line."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from tfdojo.infer.audio import MAX_AUDIO_SECONDS
from tfdojo.models.whisper_features import SAMPLE_RATE

DEFAULT_ASR = "whisper-tiny.en"


def transcribe(
    file: Annotated[Path, typer.Argument(help="A recording: wav, or any format FFmpeg reads (mp3, ogg, webm, …).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Bundled name or a CTranslate2 Whisper folder.")] = (
        DEFAULT_ASR
    ),
    max_seconds: Annotated[float, typer.Option(min=1.0, help="Refuse recordings longer than this.")] = (
        MAX_AUDIO_SECONDS
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print text, tokens and timings as JSON.")] = False,
    metrics: Annotated[bool, typer.Option("--metrics/--no-metrics", help="Print timings to stderr.")] = False,
) -> None:
    """Print the text spoken in a recording (greedy decoding with our Whisper; offline)."""
    import tfdojo
    from tfdojo.cli import err, friendly_errors, out
    from tfdojo.infer.audio import load_audio

    with friendly_errors():
        samples = load_audio(file, max_seconds=max_seconds)
        with err.status(f"loading {model}…"):
            asr = tfdojo.load(model)
        start = time.perf_counter()
        windows = asr.transcribe_tokens(samples, max_seconds=max_seconds)
        seconds = time.perf_counter() - start
        text = " ".join(t for t in (asr.decode(w) for w in windows) if t)
        audio_s = samples.numel() / SAMPLE_RATE
        if as_json:
            payload = {"model": model, "text": text, "tokens": windows, "audio_s": audio_s, "transcribe_s": seconds}
            out.print_json(json.dumps(payload))
            return
        sys.stdout.write(text + "\n")
        if metrics:
            err.print(f"[dim]{audio_s:.1f} s of audio in {seconds:.2f} s (real-time factor {seconds / audio_s:.2f})[/]")


def say(
    text: Annotated[str, typer.Argument(help="What to say (a question, at most 2000 characters).")],
    cache_dir: Annotated[Path | None, typer.Option(help="Where the wav files are kept.")] = None,
) -> None:
    """Speak TEXT with the Piper voice (offline) and print the path of the cached wav file."""
    from tfdojo.cli import friendly_errors
    from tfdojo.practice.voice import speak

    with friendly_errors():
        sys.stdout.write(f"{speak(text, cache_dir=cache_dir)}\n")


def register(app: typer.Typer) -> None:
    """Add `transcribe` and `say` to the main `tfdojo` app."""
    app.command("transcribe")(transcribe)
    app.command("say")(say)
