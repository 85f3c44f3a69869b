"""Audio in: a file (any format FFmpeg reads, through PyAV) or an array of samples -> mono float32 at 16 kHz.

Files are decoded with PyAV (the FFmpeg libraries ship inside its wheel, so no ffmpeg binary is needed) and
resampled by libswresample to 16-bit mono 16 kHz, then scaled to [-1, 1) — the same path faster-whisper takes, so
both see identical samples. Caps keep a server safe from huge uploads: the file size is checked before decoding and
the duration while decoding (decoding stops as soon as the cap is passed); both raise InputTooLargeError, and
audio that cannot be decoded raises AudioError.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tfdojo.errors import AudioError, InputTooLargeError
from tfdojo.models.whisper_features import SAMPLE_RATE

MAX_AUDIO_BYTES = 25 * 2**20  # an upload larger than this is refused before decoding
MAX_AUDIO_SECONDS = 600.0  # ten minutes: far longer than any spoken interview answer


def _too_long(seconds: float, max_seconds: float) -> InputTooLargeError:
    return InputTooLargeError(
        f"the audio is longer than the {max_seconds:.0f} s cap (at least {seconds:.1f} s); "
        f"trim it or pass a larger max_seconds"
    )


def check_samples(samples: object, *, max_seconds: float = MAX_AUDIO_SECONDS) -> Tensor:
    """A 1-D float array or tensor of 16 kHz samples -> a contiguous float32 tensor, checked for shape and values."""
    if isinstance(samples, np.ndarray):
        samples = torch.from_numpy(samples)
    if not isinstance(samples, Tensor):
        raise AudioError(f"expected a path or a 1-D float array of 16 kHz samples, got {type(samples).__name__}")
    if samples.dim() == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)  # (1, N) or (N, 1): one channel
    if samples.dim() != 1:
        raise AudioError(f"samples must be mono, shape (N,); got {tuple(samples.shape)} — average the channels first")
    if not samples.dtype.is_floating_point:
        raise AudioError(f"samples must be floats in [-1, 1] (got {samples.dtype}); divide int16 PCM by 32768")
    if samples.numel() == 0:
        raise AudioError("the audio is empty (0 samples)")
    if samples.numel() > max_seconds * SAMPLE_RATE:
        raise _too_long(samples.numel() / SAMPLE_RATE, max_seconds)
    samples = samples.detach().to("cpu", torch.float32).contiguous()
    if not bool(torch.isfinite(samples).all()):
        raise AudioError("the samples contain NaN or infinity")
    return samples


def decode_audio(
    path: str | Path, *, max_bytes: int = MAX_AUDIO_BYTES, max_seconds: float = MAX_AUDIO_SECONDS
) -> Tensor:
    """Decode the first audio stream of ``path`` to mono float32 samples at 16 kHz; AudioError on any failure."""
    import av

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"no audio file at {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise InputTooLargeError(
            f"{path} is {size / 2**20:.1f} MiB; the cap is {max_bytes / 2**20:.0f} MiB — send less audio"
        )
    limit = int(max_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError(f"{path} has no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
                if total > limit:
                    raise _too_long(total / SAMPLE_RATE, max_seconds)
            for out in resampler.resample(None):  # flush what the resampler holds back
                chunks.append(out.to_ndarray().reshape(-1))
    except av.FFmpegError as e:
        raise AudioError(f"cannot decode {path}: {e}; is it a complete audio file (wav, mp3, ogg, webm, …)?") from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return check_samples(torch.from_numpy(samples.astype(np.float32) / 32768.0), max_seconds=max_seconds)


def load_audio(source: object, *, max_seconds: float = MAX_AUDIO_SECONDS) -> Tensor:
    """A path (str or Path) is decoded; anything else must be 16 kHz samples (numpy array or tensor)."""
    if isinstance(source, str | Path):
        return decode_audio(source, max_seconds=max_seconds)
    return check_samples(source, max_seconds=max_seconds)
