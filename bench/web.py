"""The web trainer's latency: page time, grade round trip, and spoken-answer transcription, all over real HTTP.

    .venv/bin/python bench/web.py            # 30 loads per page, 20 graded answers per kind
    .venv/bin/python bench/web.py --quick    # 10 and 5

The server runs in this process on a free loopback port (uvicorn, one worker) with an empty progress store in a
temporary folder; the client is urllib. Times are wall-clock from sending the request to reading the last byte.

* page: GET of each page (Home, Map, Card, Timed session, Coding list and editor, Mock, History, Export / import).
* grade round trip: POST of an answer (graded, recorded with synchronous=FULL) plus the GET of the result page it
  redirects to — what the user waits for after "Submit". "numeric" is the fast path (a parse and a calculator
  call); "free text" runs the MiniLM grader with the encoder already loaded (the first answer, which loads it, is
  reported apart as cold).
  The grader's own time inside the server is measured too, so "web overhead" (round trip minus grading) is what
  the web layer adds: HTTP, the store transaction, the redirect and the result page.
* transcription (when voice is installed): a Piper clip uploaded to /voice/transcribe (decode + our Whisper), as a
  real-time factor, next to faster-whisper on the same clips in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from tfdojo.app.background import serve
from tfdojo.app.config import WebConfig
from tfdojo.app.trainer import Trainer
from tfdojo.practice.loader import load_bank
from tfdojo.practice.mock_judge import judge

RESULTS = Path(__file__).parent / "results"
SPOKEN = [
    "A softmax over the keys turns each query's scores into weights that sum to one.",
    "The KV cache stores the keys and values of past tokens so decoding does not recompute them.",
    "Pre-norm applies the normalization to the input of each sublayer and keeps the residual stream untouched.",
]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
        return None


OPENER = urllib.request.build_opener(_NoRedirect)


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with OPENER.open(req, timeout=300) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(values: list[float], unit: str = "ms") -> dict:
    digits = 1 if unit == "ms" else 3
    return {
        "n": len(values),
        f"p50_{unit}": round(p(values, 0.5), digits),
        f"p95_{unit}": round(p(values, 0.95), digits),
    }


def answer_round_trip(base: str, question_id: str, answer: str) -> float:
    form = {"Origin": base, "Content-Type": "application/x-www-form-urlencoded"}
    status, head, _ = request(base + "/session", urlencode({"question_id": question_id}).encode(), form)
    assert status == 303, status
    key = head["location"]
    request(base + key)
    body = urlencode({"question_id": question_id, "answer": answer}).encode()

    def submit() -> None:
        status, head, _ = request(base + key + "/answer", body, form)
        assert status == 303, status
        status, _, _ = request(base + head["location"])
        assert status == 200, status

    return timed(submit)


def transcription(base: str, repeats: int) -> dict | None:
    from tfdojo.app.voice import voice_status

    if not voice_status().listen or not voice_status().speak:
        return None
    import wave

    from tfdojo.practice.voice import speak

    folder = Path(tempfile.mkdtemp(prefix="tfdojo-bench-voice-"))
    clips = [speak(text, cache_dir=folder) for text in SPOKEN]
    seconds = []
    for clip in clips:
        with wave.open(str(clip)) as w:
            seconds.append(w.getnframes() / w.getframerate())
    ours = []
    for _ in range(repeats):
        for clip, length in zip(clips, seconds, strict=True):
            boundary = "b0undary"
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
            body = head.encode() + clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
            headers = {"Origin": base, "Content-Type": f"multipart/form-data; boundary={boundary}"}
            ms = timed(lambda b=body, h=headers: request(base + "/voice/transcribe", b, h))
            ours.append(ms / 1000 / length)
    result = {"clips": len(clips), "audio_s": [round(s, 2) for s in seconds], "ours_http_rtf": summary(ours, "rtf")}
    try:
        from faster_whisper import WhisperModel

        from tfdojo.weights.registry import bundled_model

        model = WhisperModel(str(bundled_model("whisper-tiny.en").locate()), device="cpu", cpu_threads=2)
        theirs = []
        for _ in range(repeats):
            for clip, length in zip(clips, seconds, strict=True):
                ms = timed(lambda c=clip: list(model.transcribe(str(c), beam_size=1, language="en")[0]))
                theirs.append(ms / 1000 / length)
        result["faster_whisper_rtf"] = summary(theirs, "rtf")
    except (ImportError, OSError, RuntimeError, ValueError) as e:  # reported, not fatal: the rest still counts
        result["faster_whisper_rtf"] = f"not run: {e}"
    return result


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", type=Path, default=RESULTS / "web.json")
    args = parser.parse_args()
    pages_n, answers_n = (10, 5) if args.quick else (30, 20)
    bank = load_bank()
    card = "attention-formula-walkthrough"
    coding = next(q.id for q in bank if q.type == "coding")
    numeric = next(q for q in bank if q.type == "numeric")
    pages = ["/", "/map", f"/card/{card}", "/session", "/code", f"/code/{coding}", "/mock", "/history", "/transfer"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="tfdojo-bench-web-"))
    results: dict = {}
    grading_ms: list[float] = []

    def timed_judge(question, answer, rubric):  # noqa: ANN001, ANN202 - the trainer's Judge signature
        start = time.perf_counter()
        try:
            return judge(question, answer, rubric)
        finally:
            grading_ms.append((time.perf_counter() - start) * 1000)

    config = WebConfig(port=port, data_dir=data)
    with serve(config, Trainer(config, judge=timed_judge)) as base:
        for path in pages:
            request(base + path)  # warm the route and the template
        per_page = {path: [timed(lambda u=base + path: request(u)) for _ in range(pages_n)] for path in pages}
        results["pages"] = {path: summary(v) for path, v in per_page.items()}
        results["page_all"] = summary([t for v in per_page.values() for t in v])
        answer = "Each query is compared with every key by a dot product; a softmax over the keys gives weights."
        cold = answer_round_trip(base, card, answer)
        grading_ms.clear()
        numeric_times = [answer_round_trip(base, numeric.id, "7e9") for _ in range(answers_n)]
        numeric_grading = list(grading_ms)
        grading_ms.clear()
        free_times = [answer_round_trip(base, card, answer + f" ({i})") for i in range(answers_n)]
        free_grading = list(grading_ms)
        overhead = [rt - g for rt, g in zip(numeric_times + free_times, numeric_grading + free_grading, strict=True)]
        question = bank[card]
        alone = [timed(lambda i=i: judge(question, answer + f" [{i}]")) for i in range(answers_n)]
        results["grade_round_trip"] = {
            "numeric (fast path)": summary(numeric_times),
            "free text, encoder warm": summary(free_times),
            "free text, grading inside the server": summary(free_grading),
            "free text, grader alone (no HTTP, main thread)": summary(alone),
            "web overhead (round trip minus grading)": summary(overhead),
            "free text, first answer (loads the encoder)_ms": round(cold, 1),
        }
        results["transcription"] = transcription(base, 1 if args.quick else 2)
    results["machine"] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
    }
    results["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"{'page':<40} {'p50 ms':>8} {'p95 ms':>8}")
    for path, s in results["pages"].items():
        print(f"{path:<40} {s['p50_ms']:>8} {s['p95_ms']:>8}")
    print(f"{'all pages':<40} {results['page_all']['p50_ms']:>8} {results['page_all']['p95_ms']:>8}")
    for kind, s in results["grade_round_trip"].items():
        print(f"grade round trip, {kind}: {s}")
    print(f"transcription: {results['transcription']}")
    print(f"load average {results['machine']['load_average_at_end']}; wrote {args.out}")


if __name__ == "__main__":
    main()
