"""Voice endpoints: upload a recording to get its transcript; fetch a question read aloud."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from tfdojo.app.pages import trainer_of
from tfdojo.app.voice import speech_for, transcribe_upload, voice_status
from tfdojo.errors import InputTooLargeError, TfdojoError

router = APIRouter()
CHUNK = 64 * 1024


@router.get("/voice/status")
def status() -> JSONResponse:
    """What voice this server supports, as JSON (for scripts and tools; the pages are rendered knowing it)."""
    return JSONResponse(asdict(voice_status()))


@router.post("/voice/transcribe")
def transcribe(request: Request, audio: UploadFile) -> JSONResponse:
    """The transcript of an uploaded answer, as JSON ``{"text": …}``; ``{"error": …}`` with 4xx when refused."""
    limits = trainer_of(request).config.limits
    try:
        with tempfile.TemporaryDirectory(prefix="tfdojo-voice-") as folder:
            path = Path(folder) / "answer"
            size = 0
            with path.open("wb") as sink:
                while chunk := audio.file.read(CHUNK):
                    size += len(chunk)
                    if size > limits.audio_bytes:
                        raise InputTooLargeError(
                            f"the recording is over {limits.audio_bytes // 2**20} MiB; keep answers under "
                            f"{limits.audio_seconds:.0f} s"
                        )
                    sink.write(chunk)
            text = transcribe_upload(path, limits)
    except InputTooLargeError as e:
        return JSONResponse({"error": str(e)}, status_code=413)
    except TfdojoError as e:
        return JSONResponse({"error": str(e)}, status_code=400)
    return JSONResponse({"text": text})


@router.get("/voice/question/{question_id}.wav")
def question_audio(request: Request, question_id: str) -> FileResponse:
    """The question read aloud (a WAV made by Piper, cached per text)."""
    question = trainer_of(request).bank[question_id]
    return FileResponse(speech_for(question.prompt), media_type="audio/wav")
