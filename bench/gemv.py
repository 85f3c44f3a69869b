"""One-row products with SmolLM2's matrices: our AVX2 kernels against torch's int4 / int8 kernels and fp32 oneDNN.

    OMP_NUM_THREADS=1 .venv/bin/python bench/gemv.py --out bench/results/gemv_avx2.json

Random weights of each shape (a decode step's products: fused qkv, o, fused gate/up, down, the head), bf16
activations, one thread. Each contender runs ``calls`` times back to back (the matrix stays in cache where it
fits, as in a microbenchmark; the 28 MB int8 head does not), contenders alternate within each of ``rounds``
rounds, and the median round is reported. GB/s = bytes of the stored weights (codes + scales) / time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from tfdojo.infer import gemv_kernel
from tfdojo.infer.fast_llama import onednn_packs
from tfdojo.infer.int_linear import Int4Linear, Int8Linear
from tfdojo.infer.quant import quantize_int4, quantize_int8

SHAPES = {"qkv": (960, 576), "o": (576, 576), "gate_up": (3072, 576), "down": (576, 1536), "head": (49152, 576)}


def contenders(out: int, cols: int) -> dict[str, tuple[Callable[[], object], int]]:
    """name -> (one call, weight bytes it reads)."""
    weight = torch.randn(out, cols) * 0.05
    x = torch.randn(1, cols).bfloat16()
    int4, int8 = Int4Linear(quantize_int4(weight, 32)), Int8Linear(quantize_int8(weight))
    if int4.one_row is None or int8.one_row is None:
        raise SystemExit("the AVX2 kernels are not built on this machine: nothing to compare")
    packed, scale, low = int4.one_row
    codes, row_scale = int8.one_row
    x32 = x.float()
    fp32 = torch.ops.mkldnn._reorder_linear_weight(weight, 1) if onednn_packs(torch.float32) else weight

    def fp32_product() -> object:
        if fp32 is weight:
            return torch.nn.functional.linear(x32, weight)
        return torch.ops.mkldnn._linear_pointwise(x32, fp32, None, "none", [], "")

    group_bytes = out * cols // 32  # one value per row and group of 32
    return {
        "ours int4": (lambda: gemv_kernel.q4_gemv(x[0], packed, scale, low), packed.nbytes + 4 * group_bytes),
        "torch int4": (
            lambda: torch.ops.aten._weight_int4pack_mm_for_cpu(x, int4.packed, 32, int4.scale_zero),
            int4.packed.nbytes + 4 * group_bytes,
        ),
        "ours int8": (lambda: gemv_kernel.q8_gemv(x[0], codes, row_scale), codes.nbytes + 4 * out),
        "torch int8": (lambda: torch.ops.aten._weight_int8pack_mm(x, int8.codes, int8.scale), codes.nbytes + 2 * out),
        "fp32 oneDNN": (fp32_product, 4 * out * cols),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gemv_avx2.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = {}
    with torch.inference_mode():
        for name, (out, cols) in SHAPES.items():
            fns = contenders(out, cols)
            calls = max(3, 30_000_000 // (out * cols))
            times: dict[str, list[float]] = {c: [] for c in fns}
            for _ in range(args.rounds):
                for c, (fn, _) in fns.items():
                    fn()
                    start = time.perf_counter()
                    for _ in range(calls):
                        fn()
                    times[c].append((time.perf_counter() - start) / calls)
            rows[name] = {
                c: {"us": statistics.median(t) * 1e6, "gb_s": fns[c][1] / statistics.median(t) / 1e9}
                for c, t in times.items()
            }
            cells = "  ".join(f"{c} {v['us']:7.0f} µs {v['gb_s']:5.1f} GB/s" for c, v in rows[name].items())
            print(f"{name:8s} {out}x{cols}: {cells}", flush=True)
    layers = {c: 30 * sum(rows[n][c]["us"] for n in ("qkv", "o", "gate_up", "down")) / 1e3 for c in rows["qkv"]}
    print("30 layers (ms): " + "  ".join(f"{c} {v:.1f}" for c, v in layers.items()))
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "cpu": gemv_kernel.cpu_supported() and "x86-64 AVX2+FMA",
        "rows": rows,
        "thirty_layers_ms": layers,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
