"""Whisper's front end: 16 kHz samples -> a log-mel spectrogram, 100 frames per second (Radford et al., 2022, §2.2).

    samples (N,) --pad 160 zeros at the end--> |STFT| ² (400-point periodic Hann window, hop 160, reflect-centred)
             --drop the last frame--> power (201, N//160 + 1) --Slaney mel filters--> (n_mels, frames)
             --log10, floor at max - 8, (x + 4) / 4--> features roughly in [-1, 1]

The filters are librosa's Slaney-style bank (linear below 1 kHz, logarithmic above, each triangle scaled to unit
area), computed here in float64. The dynamic-range floor uses the maximum over the whole recording, so a long
recording is featurised once and then cut into 30 s windows (:func:`windows`), the last one zero-padded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
FRAMES_PER_SECOND = SAMPLE_RATE // HOP


def _hz_to_mel(hz: Tensor) -> Tensor:
    """Slaney's mel scale: linear (3 per 200 Hz) below 1 kHz, then 27 mels per factor of 6.4 in frequency."""
    linear = hz / (200.0 / 3)
    log = 15.0 + torch.log(hz.clamp(min=1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: Tensor) -> Tensor:
    linear = mel * (200.0 / 3)
    log = 1000.0 * torch.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log, linear)


def mel_filters(n_mels: int, *, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> Tensor:
    """(n_mels, n_fft // 2 + 1) float32 triangles between mel-spaced edges from 0 Hz to sample_rate / 2."""
    fft_freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)  # (F,)
    top = _hz_to_mel(torch.tensor(sample_rate / 2, dtype=torch.float64))
    edges = _mel_to_hz(torch.linspace(0, float(top), n_mels + 2, dtype=torch.float64))  # (n_mels + 2,)
    width = edges.diff()  # (n_mels + 1,)
    offset = edges.unsqueeze(1) - fft_freqs.unsqueeze(0)  # (n_mels + 2, F)
    rising = -offset[:-2] / width[:-1].unsqueeze(1)  # (n_mels, F)
    falling = offset[2:] / width[1:].unsqueeze(1)  # (n_mels, F)
    triangles = torch.minimum(rising, falling).clamp(min=0)
    area = 2.0 / (edges[2:] - edges[:-2])  # (n_mels,) Slaney normalisation
    return (triangles * area.unsqueeze(1)).float()


def log_mel(samples: Tensor, filters: Tensor) -> Tensor:
    """(N,) float32 samples at 16 kHz -> (n_mels, N // 160 + 1) features; see the module docstring."""
    audio = F.pad(samples.float(), (0, HOP))  # (N + 160,)
    window = torch.hann_window(N_FFT, periodic=True, dtype=torch.float32)
    spec = torch.stft(audio, N_FFT, HOP, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = spec[:, :-1].abs() ** 2  # (F, frames)
    mel = filters @ power  # (n_mels, frames)
    log = mel.clamp(min=1e-10).log10()
    log = torch.maximum(log, log.max() - 8.0)
    return (log + 4.0) / 4.0


def windows(features: Tensor, n_frames: int) -> list[Tensor]:
    """Cut (n_mels, frames) features into (n_mels, n_frames) windows over the first N // 160 frames, zero-padded.

    The final frame (the one past the last full hop) is left out, as the reference decoders do; audio shorter than
    one hop gives no window.
    """
    content = features.shape[1] - 1
    out = []
    for start in range(0, content, n_frames):
        piece = features[:, start : min(start + n_frames, content)]  # (n_mels, ≤ n_frames)
        out.append(F.pad(piece, (0, n_frames - piece.shape[1])))  # (n_mels, n_frames)
    return out
