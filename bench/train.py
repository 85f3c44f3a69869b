"""Training speed and a wall-clock race, both in one run on this machine.

    .venv/bin/python bench/train.py                 # throughput (ours vs HF, same loop) and the race
    .venv/bin/python bench/train.py --skip-race     # throughput only
    .venv/bin/python bench/train.py --compile --skip-race --out train_compile.json   # + both with torch.compile

1. Throughput: tokens/s of a training step (forward, backward, AdamW) of our GPT-2 and Llama configs against
   the same-config HF ``GPT2LMHeadModel`` / ``LlamaForCausalLM`` in the same loop (``tfdojo.train.step``),
   alternating within each round; min / median / max over rounds and the per-round ratio. ``--compile`` adds
   both models with every block compiled (``torch.compile``, Inductor, as ``[run] compile = true`` does) and
   the seconds of the first, compiling step.
2. The race: nanoGPT's CPU recipe for Shakespeare (configs/nanogpt-shakespeare-char.toml: 4 layers, 4 heads,
   128 wide, 64 context, batch 12, lr 1e-3, 2000 iterations) runs to the end; then our recipe
   (configs/shakespeare-char.toml) trains for the same wall clock. Both report validation loss on the same
   held-out plays; one figure shows both curves against seconds.
Results: bench/results/train.json (or ``--out``) and bench/results/train_race.png.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from tfdojo.models.variants import VariantConfig, VariantLM
from tfdojo.train import TrainConfig, Trainer
from tfdojo.train.metrics import read_metrics
from tfdojo.train.optim import make_optimizer
from tfdojo.train.parallel.norms import clip_gradients
from tfdojo.train.step import accumulate_gradients, count_targets

RESULTS = Path(__file__).parent / "results"
CONFIGS = Path(__file__).parent.parent / "configs"
VOCAB, DIM, LAYERS, HEADS, SEQ, BATCH = 4096, 256, 4, 8, 256, 8


def _pair(family: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Our model and HF's for one family, same shapes (weights need not match for a speed test)."""
    if family == "gpt2":
        hf = GPT2LMHeadModel(
            GPT2Config(vocab_size=VOCAB, n_positions=SEQ, n_embd=DIM, n_layer=LAYERS, n_head=HEADS,
                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation="sdpa")
        )  # fmt: skip
        ours = VariantConfig(
            vocab_size=VOCAB, dim=DIM, n_layers=LAYERS, n_heads=HEADS, ffn_hidden=4 * DIM, max_seq_len=SEQ,
            positions="learned", norm="layernorm", ffn="gelu", bias=True, backend="sdpa",
        )  # fmt: skip
    else:
        hf = LlamaForCausalLM(
            LlamaConfig(vocab_size=VOCAB, hidden_size=DIM, intermediate_size=683, num_hidden_layers=LAYERS,
                        num_attention_heads=HEADS, num_key_value_heads=HEADS // 2, max_position_embeddings=SEQ,
                        tie_word_embeddings=False, attn_implementation="sdpa")
        )  # fmt: skip
        ours = VariantConfig(
            vocab_size=VOCAB, dim=DIM, n_layers=LAYERS, n_heads=HEADS, n_kv_heads=HEADS // 2, ffn_hidden=683,
            max_seq_len=SEQ, tie_embeddings=False, backend="sdpa",
        )  # fmt: skip
    return VariantLM(ours), hf


def _one_step(model: torch.nn.Module, optimizer, batch: dict[str, torch.Tensor]) -> float:
    """Seconds of one training step: forward, backward, clip, AdamW."""
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    accumulate_gradients(model, [batch], total_targets=count_targets([batch]))
    clip_gradients(list(model.parameters()), 1.0)
    optimizer.step()
    return time.perf_counter() - start


def _step_time(model: torch.nn.Module, optimizer, batch: dict[str, torch.Tensor], steps: int) -> float:
    """Seconds per training step, after one warm-up step."""
    _one_step(model, optimizer, batch)
    return sum(_one_step(model, optimizer, batch) for _ in range(steps)) / steps


def _blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder blocks of our model or of an HF GPT-2 / Llama."""
    if isinstance(model, VariantLM):
        return model.layers
    return model.transformer.h if isinstance(model, GPT2LMHeadModel) else model.model.layers


def throughput(rounds: int, steps: int, compiled: bool) -> dict:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ + 1), generator=gen)
    batch = {"input_ids": ids[:, :-1], "labels": ids[:, 1:]}
    tokens = BATCH * SEQ
    out = {}
    for family in ("gpt2", "llama"):
        ours, hf = _pair(family)
        contenders = {"tfdojo": ours, "hf": hf}
        compile_seconds = {}
        if compiled:  # every block compiled in place, as parallelize.compile_model does
            for name, model in zip(("tfdojo+compile", "hf+compile"), _pair(family), strict=True):
                for block in _blocks(model):
                    block.compile()
                contenders[name] = model
        optimizers = {name: make_optimizer(m.train(), _optim()) for name, m in contenders.items()}
        for name in contenders:
            if name.endswith("+compile"):
                compile_seconds[name] = _one_step(contenders[name], optimizers[name], batch)
                print(f"{family} {name}: first step (compiling) {compile_seconds[name]:.1f} s")
        speeds: dict[str, list[float]] = {name: [] for name in contenders}
        for r in range(rounds):
            for name, model in contenders.items():
                speeds[name].append(tokens / _step_time(model, optimizers[name], batch, steps))
            line = "  ".join(f"{n} {s[-1]:,.0f}" for n, s in speeds.items())
            print(f"{family} round {r + 1}: tok/s {line}")
        ratios = [a / b for a, b in zip(speeds["tfdojo"], speeds["hf"], strict=True)]
        out[family] = {
            name: {"min": min(s), "median": statistics.median(s), "max": max(s)} for name, s in speeds.items()
        } | {"ratio_tfdojo_over_hf": {"min": min(ratios), "median": statistics.median(ratios), "max": max(ratios)}}
        if compiled:
            for key, (a, b) in {
                "ratio_compiled_over_hf": ("tfdojo+compile", "hf"),
                "ratio_compiled_over_hf_compiled": ("tfdojo+compile", "hf+compile"),
            }.items():
                r = [x / y for x, y in zip(speeds[a], speeds[b], strict=True)]
                out[family][key] = {"min": min(r), "median": statistics.median(r), "max": max(r)}
            out[family]["first_step_seconds"] = compile_seconds
    return out


def _optim():
    from tfdojo.train.config import OptimConfig

    return OptimConfig(lr=1e-3)


def race(work: Path) -> dict:
    """nanoGPT's recipe to its end, then ours for the same wall clock; validation loss of each."""
    results = {}
    start = time.perf_counter()
    nano_dir = work / "nanogpt"
    nano = Trainer(TrainConfig.from_toml(CONFIGS / "nanogpt-shakespeare-char.toml"), nano_dir, progress=True).run()
    budget = time.perf_counter() - start
    results["nanogpt_recipe"] = {"seconds": budget, "steps": nano.steps, "val_loss": nano.final_val_loss}
    ours_dir = work / "ours"
    start = time.perf_counter()
    ours = Trainer(TrainConfig.from_toml(CONFIGS / "shakespeare-char.toml"), ours_dir, progress=True).run(
        max_seconds=budget
    )
    results["tfdojo_recipe"] = {
        "seconds": time.perf_counter() - start, "steps": ours.steps, "val_loss": ours.final_val_loss,
    }  # fmt: skip
    _race_figure(read_metrics(nano_dir), read_metrics(ours_dir), budget)
    return results


def _race_figure(nano: list[dict], ours: list[dict], budget: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for label, rows in (("nanoGPT CPU recipe", nano), ("tfdojo recipe", ours)):
        steps = [r for r in rows if "loss" in r]
        seconds = [0.0]
        for r in steps:
            seconds.append(seconds[-1] + r["tokens"] / r["tok_s"])
        line = ax.plot(seconds[1:], [r["loss"] for r in steps], lw=0.8, alpha=0.6, label=f"{label}, train")[0]
        val = [(seconds[min(r["step"], len(steps))], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
        if val:
            ax.plot(*zip(*val, strict=True), "o-", color=line.get_color(), ms=3, label=f"{label}, validation")
    ax.axvline(budget, color="grey", ls=":", lw=1)
    ax.set_xlabel("training seconds (step time only)")
    ax.set_ylabel("cross-entropy (nats / char)")
    ax.set_title("Shakespeare, character level: same wall clock")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "train_race.png")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--skip-race", action="store_true")
    parser.add_argument("--out", default="train.json", help="file name under bench/results/")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_average_at_start": os.getloadavg(), "torch_threads": torch.get_num_threads()},
        "shapes": {"vocab": VOCAB, "dim": DIM, "layers": LAYERS, "heads": HEADS, "seq": SEQ, "batch": BATCH},
        "throughput": throughput(args.rounds, args.steps, args.compile),
    }  # fmt: skip
    if not args.skip_race:
        with tempfile.TemporaryDirectory() as work:
            report["race"] = race(Path(work))
    report["machine"]["load_average_at_end"] = os.getloadavg()
    (RESULTS / args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
