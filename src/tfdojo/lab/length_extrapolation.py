"""Length extrapolation (Press et al., 2022, "Train Short, Test Long"): tiny character models with sinusoidal,
learned, RoPE, ALiBi and no positions (NoPE; Kazemnejad et al., 2023), trained on one length and evaluated on
held-out text at 1×, 2× and 4× that length."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from tfdojo.lab.figures import figure
from tfdojo.lab.result import Finding
from tfdojo.lab.tiny_lm import CharText, Recipe, train
from tfdojo.models.variants import PositionKind, VariantConfig, VariantLM

ARMS: dict[str, PositionKind] = {
    "sinusoidal": "sinusoidal",
    "learned": "learned",
    "rope": "rope",
    "alibi": "alibi",
    "nope": "none",
}
FACTORS = (1, 2, 4)
EVAL_CHARS = 8192  # held-out characters per evaluation length (same text at every length)


@torch.no_grad()
def losses(model: VariantLM, text: CharText, seq_len: int) -> dict[str, float]:
    """Mean loss (nats/char) over whole windows of ``seq_len``, and over the positions past the training length."""
    train_len = model.config.max_seq_len // FACTORS[-1]
    inputs, targets = text.held_out(seq_len, EVAL_CHARS // seq_len)
    per_token = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten(), reduction="none")
    per_token = per_token.view(inputs.shape)  # (N, T)
    beyond = per_token[:, train_len:] if seq_len > train_len else per_token
    return {"all": per_token.mean().item(), "beyond": beyond.mean().item()}


def run(out: Path, *, quick: bool = False, arms: dict[str, PositionKind] | None = None) -> Finding:
    """Train one model per arm on windows of ``train_len``; ``arms`` maps an arm's name to the positions it is
    built with (a wrong mapping, e.g. the "alibi" arm built with learned positions, makes the claim fail)."""
    arms = ARMS if arms is None else arms
    train_len, steps = (32, 300) if quick else (32, 600)
    text = CharText.load()
    rows: dict[str, dict[str, float | dict[str, float]]] = {}
    for name, kind in arms.items():
        config = VariantConfig(
            vocab_size=text.tokenizer.vocab_size,
            dim=64,
            n_layers=2,
            n_heads=4,
            ffn_hidden=256,
            max_seq_len=FACTORS[-1] * train_len,  # learned / sinusoidal tables reach 4×; rows past 1× never train
            positions=kind,
        )
        model = train(config, text.batches(train_len, 32), Recipe(steps=steps, lr=1e-2))
        by_factor = {str(f): losses(model, text, f * train_len) for f in FACTORS}
        rows[name] = {
            "positions": kind,
            "loss": {f: v["all"] for f, v in by_factor.items()},
            "loss_beyond_train_len": {f: v["beyond"] for f, v in by_factor.items()},
        }
    rise = {name: r["loss"]["4"] - r["loss"]["1"] for name, r in rows.items()}
    checks = {}
    if "alibi" in rows:
        checks["ALiBi keeps its loss at 4x (rise < 0.05 nats)"] = rise["alibi"] < 0.05
        checks["ALiBi has the lowest loss at 4x"] = all(
            rows["alibi"]["loss"]["4"] <= r["loss"]["4"] for r in rows.values()
        )
    for name in ("rope", "sinusoidal"):
        if name in rows:
            checks[f"{name} degrades past the training length (rise > 0.2 nats at 4x)"] = rise[name] > 0.2
    if {"nope", "rope", "sinusoidal"} <= rows.keys():
        checks["NoPE degrades less than RoPE and sinusoidal"] = rise["nope"] < min(rise["rope"], rise["sinusoidal"])
    with figure(out, "length-extrapolation", ncols=2) as (a, b):
        for name, r in rows.items():
            a.plot(FACTORS, [r["loss"][str(f)] for f in FACTORS], "o-", label=name)
            b.plot(FACTORS[1:], [r["loss_beyond_train_len"][str(f)] for f in FACTORS[1:]], "o-", label=name)
        a.set_title("mean loss over the window")
        b.set_title("loss past the training length")
        for ax in (a, b):
            ax.set_xlabel("evaluation length / training length")
            ax.set_xticks(FACTORS)
            ax.set_ylabel("nats / char")
        a.legend(fontsize=7)
    numbers = {"train_len": train_len, "steps": steps, "rows": rows, "rise_at_4x": rise, "checks": checks}
    return Finding(all(checks.values()), numbers, [str(out / "length-extrapolation.png")])
