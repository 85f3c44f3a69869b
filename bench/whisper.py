"""Speech recognition speed and accuracy: our Whisper against faster-whisper on the same weights, same clips, same run.

    .venv/bin/python bench/whisper.py                 # 22 spoken answers (Piper + espeak-ng), 2 threads each
    .venv/bin/python bench/whisper.py --threads 1

Each clip is transcribed greedily (no timestamps) by both decoders, alternating which goes first. Reported per
decoder: the real-time factor (seconds of compute per second of audio; < 1 is faster than real time) by wall clock
and by CPU time of this process (which other processes on a shared machine do not inflate; an upper bound on the
wall time two idle cores would take, since both decoders keep both threads busy only part of the time), the word
error rate against the text spoken, and whether the greedy tokens are identical. The load average before and after
is recorded: on the shared 2-core dev machine the wall numbers move with it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import tfdojo
from tfdojo.infer.audio import decode_audio
from tfdojo.infer.wer import word_error_rate
from tfdojo.practice.voice_clips import espeak_available, make_clips

RESULTS = Path(__file__).parent / "results"


def machine() -> str:
    """The CPU model and core count, for the report."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())
    return f"{model}, {os.cpu_count()} cores visible, {platform.system()}"


def timed(fn, *args):
    """(result, wall seconds, process CPU seconds) of fn(*args)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="threads for each decoder (default 2)")
    parser.add_argument("--out", type=Path, default=RESULTS / "whisper.json")
    args = parser.parse_args()
    from faster_whisper import WhisperModel

    torch.set_num_threads(args.threads)
    asr = tfdojo.load("whisper-tiny.en")
    reference = WhisperModel(asr.source, device="cpu", compute_type="float32", cpu_threads=args.threads)

    def ours(samples):
        return [t for w in asr.transcribe_tokens(samples) for t in w]

    def theirs(samples):
        options = {"beam_size": 1, "temperature": 0.0, "without_timestamps": True, "vad_filter": False}
        options |= {"condition_on_previous_text": False, "no_speech_threshold": None, "log_prob_threshold": None}
        segments, _ = reference.transcribe(samples.numpy(), compression_ratio_threshold=None, **options)
        return [t for s in segments for t in s.tokens]

    with tempfile.TemporaryDirectory() as folder:
        clips = (
            make_clips(folder, piper=11, espeak=11) if espeak_available() else make_clips(folder, piper=22, espeak=0)
        )
        audio = [(clip, decode_audio(clip.path)) for clip in clips]
    ours(audio[0][1]), theirs(audio[0][1])  # warm-up: first-call allocations and thread pools
    load_before = os.getloadavg()
    rows = []
    for i, (clip, samples) in enumerate(audio):
        order = [("ours", ours), ("faster-whisper", theirs)]
        measured = {name: timed(fn, samples) for name, fn in (order if i % 2 == 0 else order[::-1])}
        rows.append((clip, samples.numel() / 16_000, measured))
    load_after = os.getloadavg()
    audio_s = sum(seconds for _, seconds, _ in rows)
    decoders = {}
    for name in ("ours", "faster-whisper"):
        wall = sum(m[name][1] for _, _, m in rows)
        cpu = sum(m[name][2] for _, _, m in rows)
        rates: dict[str, list[float]] = {}
        for clip, _, m in rows:
            rates.setdefault(clip.voice, []).append(word_error_rate(clip.text, asr.decode(m[name][0])))
        wer = {voice: float(np.mean(r)) for voice, r in rates.items()}
        decoders[name] = {"rtf_wall": wall / audio_s, "rtf_cpu": cpu / audio_s, "wer": wer}
    identical = sum(m["ours"][0] == m["faster-whisper"][0] for _, _, m in rows)
    report = {
        "benchmark": "whisper-tiny.en greedy transcription: ours vs faster-whisper (CTranslate2), same weights",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "load_average_1m": [load_before[0], load_after[0]],
        "torch": torch.__version__,
        "threads": args.threads,
        "clips": len(rows),
        "audio_s": audio_s,
        "identical_greedy_tokens": f"{identical}/{len(rows)}",
        "decoders": decoders,
        "ours_over_faster_whisper_wall": decoders["ours"]["rtf_wall"] / decoders["faster-whisper"]["rtf_wall"],
    }
    print(
        f"{len(rows)} clips, {audio_s:.0f} s of audio, {args.threads} threads, load average {report['load_average_1m']}"
    )
    print(f"{'decoder':<16}{'RTF wall':>10}{'RTF cpu':>10}  WER by voice")
    for name, d in decoders.items():
        wer = ", ".join(f"{voice} {rate:.3f}" for voice, rate in d["wer"].items())
        print(f"{name:<16}{d['rtf_wall']:>10.3f}{d['rtf_cpu']:>10.3f}  {wer}")
    print(f"identical greedy tokens: {report['identical_greedy_tokens']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
