"""An IsoFLOP sweep at toy scale (Hoffmann et al., 2022, "Chinchilla", approach 2): at each fixed compute budget
train several model sizes on Shakespeare characters, fit a parabola of loss against log N, and read off the
compute-optimal N; beside it, the ~20 tokens per parameter of the paper's rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tfdojo.calc.flops import flops_per_token
from tfdojo.calc.params import param_count
from tfdojo.calc.scaling import TOKENS_PER_PARAM
from tfdojo.lab.figures import figure
from tfdojo.lab.result import Finding
from tfdojo.lab.tiny_lm import CharText, Recipe, train
from tfdojo.models.variants import VariantConfig

SEQ_LEN = 64
BATCH = 16  # sequences per step for every size: the budget sets the number of steps (a cosine schedule to its end)
BUDGETS = (1e10, 3e10, 1e11)  # the full run: three budgets, so N_opt's growth is a fitted slope, not two points
LADDER = (4, 6, 8, 12, 16, 24, 32)  # widths; budget i sweeps LADDER[i : i + SIZES], one rung up per 3x of compute
SIZES = 5


def config(dim: int, vocab_size: int) -> VariantConfig:
    """A two-layer model of width ``dim`` (16-wide heads); its size grows like 16·dim² per layer."""
    return VariantConfig(
        vocab_size=vocab_size, dim=dim, n_layers=2, n_heads=max(1, dim // 16), ffn_hidden=4 * dim, max_seq_len=SEQ_LEN
    )


def fit_optimum(log_n: list[float], loss: list[float]) -> dict[str, float | bool]:
    """Least-squares parabola loss = a·x² + b·x + c in x = log10 N; its vertex, and whether it is a minimum
    inside the sizes tried."""
    a, b, c = np.polyfit(log_n, loss, 2)
    x = -b / (2 * a) if a != 0 else float("nan")
    interior = bool(a > 0 and min(log_n) < x < max(log_n))
    return {"a": float(a), "b": float(b), "c": float(c), "log10_n_opt": float(x), "interior": interior}


def widths(index: int) -> tuple[int, ...]:
    """The widths swept at the ``index``-th budget: five rungs of the ladder, shifted up one rung per budget so each
    sweep stays centred on its optimum (Chinchilla's model sizes also move with the budget)."""
    return LADDER[index : index + SIZES]


def run(out: Path, *, quick: bool = False, dims: tuple[int, ...] | None = None) -> Finding:
    """Sweep budgets × widths (quick: the first budget only, so only its interior optimum is checked); ``dims``
    replaces the ladder with the same widths at every budget (sizes that miss the optimum make the claim fail)."""
    budgets = BUDGETS[:1] if quick else BUDGETS
    text = CharText.load()
    val_inputs, val_targets = text.held_out(SEQ_LEN, 256 if quick else 512)
    sweeps = []
    for index, budget in enumerate(budgets):
        runs = []
        for dim in dims or widths(index):
            c = config(dim, text.tokenizer.vocab_size)
            per_token = flops_per_token(c, SEQ_LEN).value  # forward + backward, attention included
            tokens = budget / per_token
            steps = max(1, round(tokens / (BATCH * SEQ_LEN)))
            model = train(c, text.batches(SEQ_LEN, BATCH), Recipe(steps=steps, lr=1e-2, warmup=max(1, steps // 10)))
            with torch.no_grad():
                loss = F.cross_entropy(model(val_inputs).flatten(0, 1), val_targets.flatten()).item()
            params = param_count(c).value
            runs.append({"dim": dim, "params": params, "tokens": steps * BATCH * SEQ_LEN,
                         "steps": steps, "val_loss": loss})  # fmt: skip
        fit = fit_optimum([math.log10(r["params"]) for r in runs], [r["val_loss"] for r in runs])
        n_opt = 10 ** fit["log10_n_opt"]
        log_n, log_d = ([math.log10(r[k]) for r in runs] for k in ("params", "tokens"))
        d_opt = 10 ** float(np.interp(fit["log10_n_opt"], log_n, log_d))  # the tokens this budget buys at N_opt
        sweeps.append({"budget": budget, "runs": runs, "fit": fit, "n_opt": n_opt, "d_opt": d_opt,
                       "tokens_per_param": d_opt / n_opt})  # fmt: skip
    n_opts = [s["n_opt"] for s in sweeps]
    checks = {
        "every budget has an interior optimum (parabola opens upward, vertex inside the sizes)": all(
            s["fit"]["interior"] for s in sweeps
        ),
    }
    exponent = None
    if len(sweeps) > 1:
        checks["the optimal N grows with the budget"] = all(a < b for a, b in zip(n_opts, n_opts[1:], strict=False))
        checks["the best loss falls with the budget"] = all(
            min(r["val_loss"] for r in a["runs"]) > min(r["val_loss"] for r in b["runs"])
            for a, b in zip(sweeps, sweeps[1:], strict=False)
        )
        exponent = float(np.polyfit(np.log10(budgets), np.log10(n_opts), 1)[0])  # N_opt ∝ C^a; Chinchilla a ≈ 0.5
    with figure(out, "isoflop", ncols=2) as (a, b):
        for s in sweeps:
            xs = [r["params"] for r in s["runs"]]
            line = a.semilogx(xs, [r["val_loss"] for r in s["runs"]], "o", label=f"C = {s['budget']:.0e}")[0]
            grid = np.linspace(math.log10(min(xs)), math.log10(max(xs)), 50)
            f = s["fit"]
            a.semilogx(10**grid, f["a"] * grid**2 + f["b"] * grid + f["c"], "-", color=line.get_color())
        a.set_xlabel("parameters N")
        a.set_ylabel("held-out loss (nats/char)")
        a.legend(fontsize=7)
        slope = f" (∝ C^{exponent:.2f})" if exponent is not None else ""
        b.loglog(budgets, n_opts, "o-", label=f"fitted N_opt{slope}")
        b.loglog(budgets, [math.sqrt(c / (6 * TOKENS_PER_PARAM)) for c in budgets], "k--", label="20 tokens/param")
        b.set_xlabel("training FLOPs C")
        b.set_ylabel("compute-optimal N")
        b.legend(fontsize=7)
    numbers = {
        "seq_len": SEQ_LEN,
        "batch": BATCH,
        "budgets": list(budgets),
        "dims": [[r["dim"] for r in s["runs"]] for s in sweeps],
        "sweeps": sweeps,
        "n_opt_exponent": exponent,
        "chinchilla_tokens_per_param": TOKENS_PER_PARAM,
        "checks": checks,
    }
    return Finding(all(checks.values()), numbers, [str(out / "isoflop.png")])
