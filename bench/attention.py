"""Attention backends against sequence length: forward time and peak extra memory, one process per point.

    .venv/bin/python bench/attention.py            # L = 256 … 16384, every backend
    .venv/bin/python bench/attention.py --quick    # L = 256 … 4096, fewer repeats (about a minute)

B = 1, 9 heads (SmolLM2-135M's), D = 64, fp32, 2 threads, causal (Linformer, which cannot be causal, is
bidirectional), forward only under ``torch.inference_mode()``. Every (backend, L) point runs in a fresh
subprocess, so one point's allocator state and peak cannot leak into the next.

Memory is the peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the kernel's high-water
mark) after the first call minus the resident size just before it, with q, k, v already allocated: the extra
memory the call itself needed. Points whose estimated extra memory exceeds ``--max-gb`` (eager at 16384 needs
several (9, L, L) fp32 tensors, ≈ 10 GB each) are skipped and recorded as skipped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
HEADS, HEAD_DIM, THREADS = 9, 64, 2
LENGTHS = [256, 512, 1024, 2048, 4096, 8192, 16384]
QUICK_LENGTHS = [256, 1024, 4096]
WINDOW, LINFORMER_K = 512, 256

# name -> (scaled_dot_product options, causal, what the point measures)
BACKENDS: dict[str, tuple[dict, bool, str]] = {
    "eager": ({"backend": "eager"}, True, "written-out softmax(QKᵀ)V, (T, S) matrices in memory"),
    "sdpa": ({"backend": "sdpa"}, True, "torch.nn.functional.scaled_dot_product_attention"),
    "tiled": ({"backend": "tiled"}, True, "FlashAttention-2 tiles + online softmax in PyTorch"),
    "tiled_window": ({"backend": "tiled", "window": WINDOW}, True, f"tiled with a {WINDOW}-key sliding window"),
    "linear": ({"backend": "linear"}, True, "causal linear attention, elu+1 features, chunked running sums"),
    "linformer": ({"backend": "linformer"}, False, f"Linformer, keys/values projected to k={LINFORMER_K}"),
}


def estimated_extra_bytes(name: str, length: int) -> float:
    """A generous estimate of a point's extra memory, to skip what this machine cannot hold."""
    if name == "eager":
        return 3 * HEADS * length * length * 4  # scores, masked scores, probabilities
    return 64 * HEADS * length * HEAD_DIM * 4  # everything else is linear in L


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_point(name: str, length: int, repeats: int) -> dict:
    """Run one point in this process: peak extra memory of the first call, then the timed repeats."""
    import torch

    from tfdojo.nn.attention import scaled_dot_product
    from tfdojo.nn.backends.linformer import LinformerProjection

    torch.set_num_threads(THREADS)
    options, causal, _ = BACKENDS[name]
    options = dict(options)
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, HEADS, length, HEAD_DIM, generator=gen) for _ in range(3))
    if name == "linformer":
        options["projection"] = LinformerProjection(length, min(LINFORMER_K, length))

    with torch.inference_mode():
        before = _resident_bytes()
        start = time.perf_counter()
        scaled_dot_product(q, k, v, causal=causal, **options)
        first_s = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
        times = []
        for _ in range(repeats if first_s < 5 else 1):
            start = time.perf_counter()
            scaled_dot_product(q, k, v, causal=causal, **options)
            times.append(time.perf_counter() - start)
    return {
        "backend": name,
        "L": length,
        "ms_median": 1000 * statistics.median(times),
        "ms_min": 1000 * min(times),
        "repeats": len(times),
        "peak_extra_mb": max(peak - before, 0) / 2**20,
    }


def run_point(name: str, length: int, repeats: int, max_gb: float) -> dict:
    """Measure one point in a fresh subprocess (or record why it was skipped)."""
    if estimated_extra_bytes(name, length) > max_gb * 2**30:
        return {"backend": name, "L": length, "skipped": f"needs more than {max_gb:g} GB (estimated)"}
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}
    cmd = [sys.executable, __file__, "--point", name, str(length), "--repeats", str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode:
        return {"backend": name, "L": length, "skipped": f"failed: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(done.stdout)


def cpu_model() -> str:
    """The processor's name from /proc/cpuinfo (platform.processor() is often empty on Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.machine()


def table(points: list[dict], lengths: list[int]) -> str:
    """Markdown table: one row per backend, 'ms / MB' per length."""
    by_key = {(p["backend"], p["L"]): p for p in points}
    lines = ["| backend | " + " | ".join(f"L={n}" for n in lengths) + " |", "|---" * (len(lengths) + 1) + "|"]
    for name in dict.fromkeys(p["backend"] for p in points):  # the backends measured, in order
        cells = []
        for n in lengths:
            p = by_key.get((name, n))
            if p is None:
                cells.append("")
            elif "skipped" in p:
                cells.append("skipped")
            else:
                cells.append(f"{p['ms_median']:.1f} ms / {p['peak_extra_mb']:.0f} MB")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bars(points: list[dict]) -> dict:
    """The acceptance bars: tiled time vs SDPA at L=4096, tiled memory vs eager at L=8192."""
    by_key = {(p["backend"], p["L"]): p for p in points if "skipped" not in p}
    result = {}
    if ("tiled", 4096) in by_key and ("sdpa", 4096) in by_key:
        result["tiled_over_sdpa_time_L4096"] = by_key["tiled", 4096]["ms_median"] / by_key["sdpa", 4096]["ms_median"]
    if ("tiled", 8192) in by_key and ("eager", 8192) in by_key:
        eager_mb = by_key["eager", 8192]["peak_extra_mb"]
        result["tiled_over_eager_memory_L8192"] = by_key["tiled", 8192]["peak_extra_mb"] / eager_mb
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="L = 256, 1024, 4096 and 3 repeats")
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--lengths", nargs="*", type=int)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-gb", type=float, default=12.0, help="skip points estimated to need more")
    parser.add_argument("--out", type=Path, default=RESULTS / "attention.json")
    parser.add_argument("--point", nargs=2, metavar=("BACKEND", "L"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.point:  # the child process: one measurement, JSON on stdout
        print(json.dumps(measure_point(args.point[0], int(args.point[1]), args.repeats)))
        return

    lengths = args.lengths or (QUICK_LENGTHS if args.quick else LENGTHS)
    repeats = 3 if args.quick else args.repeats
    points = []
    for length in lengths:
        for name in args.backends:
            point = run_point(name, length, repeats, args.max_gb)
            points.append(point)
            shown = point.get("skipped") or f"{point['ms_median']:9.1f} ms  {point['peak_extra_mb']:8.1f} MB"
            print(f"{name:>13} L={length:<6} {shown}", flush=True)

    import torch

    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "torch": torch.__version__,
        "setup": {
            "batch": 1,
            "heads": HEADS,
            "head_dim": HEAD_DIM,
            "dtype": "float32",
            "threads": THREADS,
            "inference_mode": True,
            "pass": "forward",
            "causal": {name: causal for name, (_, causal, _) in BACKENDS.items()},
            "what": {name: what for name, (_, _, what) in BACKENDS.items()},
            "memory": "peak RSS (getrusage ru_maxrss) after the first call minus RSS before it, per subprocess",
        },
        "points": points,
        "bars": bars(points),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(points, lengths))
    print(json.dumps(report["bars"], indent=2))


if __name__ == "__main__":
    main()
