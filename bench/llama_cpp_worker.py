"""llama.cpp (through llama-cpp-python) as a timing worker for bench/decode.py and bench/perplexity.py.

Runs in the bench environment (``make bench`` builds llama-cpp-python into .venv-bench; it has no torch), loads
the GGUF once, then answers one JSON request per stdin line with one JSON line on stdout:

    {"op": "prefill", "ids": [...]}                  -> {"s": seconds for one forward over the ids}
    {"op": "decode", "ids": [...], "n": 128}         -> {"s": seconds from the first greedy token to the (n+1)th}
    {"op": "nll", "ids": [...]}                      -> {"nll": [-log p(ids[t+1] | ids[:t+1]) for each t]}

Each request starts from an empty cache (``reset``), so no prompt prefix is reused between requests.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from llama_cpp import Llama


def main() -> None:
    path, threads, n_ctx, logits_all = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "nll"
    # n_threads_batch (prompts) defaults to every core: held to the same count as ours, as n_threads (decode)
    llm = Llama(
        path, n_ctx=n_ctx, n_batch=512, n_threads=threads, n_threads_batch=threads, logits_all=logits_all, verbose=False
    )
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        llm.reset()
        ids = request["ids"]
        start = time.perf_counter()
        if request["op"] == "prefill":
            llm.eval(ids)
            reply = {"s": time.perf_counter() - start}
        elif request["op"] == "decode":  # the prompt's forward happens before the first token is yielded
            for count, _ in enumerate(llm.generate(ids, top_k=1, temp=0.0, reset=False)):
                if count == 0:
                    start = time.perf_counter()
                elif count == request["n"]:
                    break
            reply = {"s": time.perf_counter() - start}
        else:  # nll: log-softmax of every position's logits (fp32, as llama.cpp returns them)
            llm.eval(ids)
            logits = np.asarray(llm.scores[: len(ids) - 1], dtype=np.float64)  # (T-1, V)
            top = logits.max(axis=1, keepdims=True)
            log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            reply = {"nll": (log_z - logits[np.arange(len(ids) - 1), ids[1:]]).tolist()}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
