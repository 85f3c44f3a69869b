"""Spoken interview answers made offline, to check speech recognition against the text that was said.

Two unrelated synthesisers speak them: Piper (a neural VITS voice, deterministic here with its noise set to 0) and
Debian's ``espeak-ng`` (formant synthesis, robotic but clear), each at a few speeds and voices so that the clips
differ in pace and timbre as well as in words.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tfdojo.errors import AudioError, ModelNotInstalledError

ANSWERS = [
    "Attention lets every token weigh every other token, so the model can gather context from the whole sequence.",
    "The key value cache stores past keys and values, so each new token costs one step instead of a full pass.",
    "Layer normalization keeps activations at a stable scale, and pre-norm blocks train without a long warm-up.",
    "Rotary embeddings rotate the queries and keys by an angle that grows with the position of the token.",
    "Grouped query attention shares one key and value head among several query heads to shrink the cache.",
    "A mixture of experts sends each token to two of eight feed-forward networks chosen by a router.",
    "Flash attention computes the softmax in tiles, so it never writes the full score matrix to memory.",
    "Greedy decoding picks the most likely token at every step, while beam search keeps several candidates.",
    "The learning rate warms up for a few thousand steps and then follows a cosine decay to a small value.",
    "Tied embeddings reuse the input table as the output projection, which saves many parameters.",
    "Byte pair encoding merges the most frequent pairs of symbols until the vocabulary is full.",
    "Data parallel training copies the model to every device and averages the gradients after each step.",
    "Tensor parallelism splits each weight matrix across devices, so every layer needs an all reduce.",
    "Speculative decoding lets a small draft model propose tokens that the large model checks in one pass.",
    "Perplexity is the exponential of the average negative log likelihood of each token.",
    "Dropout sets random activations to zero during training, which makes the network less likely to overfit.",
    "The softmax does not change when we add a constant, so we subtract the maximum before we exponentiate.",
    "Quantizing the weights to four bits cuts their memory by a factor of eight compared with full precision.",
    "Sliding window attention limits each query to the most recent few thousand keys.",
    "A causal mask stops a position from attending to the tokens that come after it.",
    "A vision transformer cuts the image into small square patches and embeds each one like a word.",
    "Cross attention lets the decoder read the output of the encoder in every layer.",
]


@dataclass(frozen=True)
class Clip:
    """One spoken answer: the wav file, the text that was said, and which voice said it."""

    path: Path
    text: str
    voice: str


def espeak_available() -> bool:
    """Whether Debian's espeak-ng command is installed."""
    return shutil.which("espeak-ng") is not None


def espeak_clip(text: str, path: Path, *, voice: str = "en-us", speed: int = 165, pitch: int = 50) -> Path:
    """``text`` spoken by espeak-ng into the wav file ``path`` (22.05 kHz, 16-bit mono)."""
    if not espeak_available():
        raise ModelNotInstalledError("espeak-ng is not installed; on Debian: apt-get install espeak-ng")
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), "--", text]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0 or not path.is_file():
        raise AudioError(f"espeak-ng failed ({done.returncode}): {done.stderr.strip()[:200]}")
    return path


# (length_scale) for Piper and (voice, words per minute, pitch) for espeak-ng, cycled over the answers.
PIPER_PACES = (0.9, 1.0, 1.1, 1.2)
ESPEAK_STYLES = (("en-us", 160, 50), ("en", 175, 40), ("en-us", 150, 60), ("en-gb-x-rp", 170, 45))


def make_clips(folder: str | Path, *, piper: int = 11, espeak: int = 11) -> list[Clip]:
    """``piper`` answers spoken by Piper, then ``espeak`` others spoken by espeak-ng, as wav files in ``folder``."""
    from tfdojo.practice.voice import synthesize

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if piper + espeak > len(ANSWERS):
        raise AudioError(f"there are {len(ANSWERS)} answers; asked for {piper + espeak} clips")
    clips = []
    for i, text in enumerate(ANSWERS[:piper]):
        pace = PIPER_PACES[i % len(PIPER_PACES)]
        path = synthesize(text, folder / f"piper_{i:02d}.wav", length_scale=pace, noise_scale=0.0, noise_w_scale=0.0)
        clips.append(Clip(path, text, "piper"))
    for i, text in enumerate(ANSWERS[piper : piper + espeak]):
        voice, speed, pitch = ESPEAK_STYLES[i % len(ESPEAK_STYLES)]
        path = espeak_clip(text, folder / f"espeak_{i:02d}.wav", voice=voice, speed=speed, pitch=pitch)
        clips.append(Clip(path, text, "espeak-ng"))
    return clips
