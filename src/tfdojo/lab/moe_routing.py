"""MoE routing (Shazeer et al., 2017; Fedus et al., 2022, Switch): a router left alone sends most tokens to a few
experts; the load-balancing loss spreads them out, and with a fixed capacity factor the balanced router drops far
fewer tokens."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from tfdojo.lab.figures import figure
from tfdojo.lab.result import Finding
from tfdojo.loading import one_thread
from tfdojo.nn.moe import MoE

DIM, EXPERTS, TOP_K = 32, 8, 1
FACTORS = [0.5, 1.0, 1.25, 1.5, 2.0, 4.0]


def tokens(n: int, generator: torch.Generator) -> Tensor:
    """Inputs that share a common offset (as real hidden states do), so an untrained router favours one expert."""
    offset = torch.linspace(-1, 1, DIM)
    return torch.randn(n, DIM, generator=generator) + 2.0 * offset


def train(balance: float, steps: int, seed: int = 0) -> MoE:
    """Fit a dropless top-1 MoE to a fixed random teacher, with ``balance`` × the load-balancing loss."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    moe = MoE(DIM, 64, EXPERTS, TOP_K)
    teacher = torch.nn.Sequential(torch.nn.Linear(DIM, 64), torch.nn.Tanh(), torch.nn.Linear(64, DIM))
    opt = torch.optim.Adam(moe.parameters(), lr=3e-3)
    for _ in range(steps):
        x = tokens(256, g)
        y, aux = moe(x)
        with torch.no_grad():
            target = teacher(x)
        loss = (y - target).pow(2).mean() + balance * aux.load_balancing_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return moe


@torch.no_grad()
def load_and_drops(moe: MoE, x: Tensor) -> tuple[list[float], dict[str, float]]:
    """Share of tokens each expert receives (dropless), and the dropped share at each capacity factor."""
    choice = moe.route(moe.router(x))[1][:, 0]  # (N,) top-1 expert
    load = torch.bincount(choice, minlength=EXPERTS).float() / x.shape[0]
    drops = {}
    for factor in FACTORS:
        moe.capacity_factor = factor
        drops[str(factor)] = (moe(x)[1].dropped.float() / x.shape[0]).item()
    moe.capacity_factor = None
    return load.tolist(), drops


def run(out: Path, *, quick: bool = False, balance: float = 0.05) -> Finding:
    """Train twice (balance 0 and ``balance``), then measure load and drops on held-out tokens."""
    steps = 60 if quick else 400
    held_out = tokens(4096, torch.Generator().manual_seed(123))
    rows = {}
    for name, coefficient in (("no balancing loss", 0.0), ("balancing loss", balance)):
        with one_thread():  # tiny matrices: a second thread only waits for time slices on a shared machine
            load, drops = load_and_drops(train(coefficient, steps), held_out)
        rows[name] = {"coefficient": coefficient, "load": load, "max_load": max(load), "dropped": drops}
    free, balanced = rows["no balancing loss"], rows["balancing loss"]
    checks = {
        "without the loss one expert gets > 2x its fair share": free["max_load"] > 2 / EXPERTS,
        "the loss brings the busiest expert under 1.5x fair share": balanced["max_load"] < 1.5 / EXPERTS,
        "at capacity 1.25 the balanced router drops < half as much": balanced["dropped"]["1.25"]
        < 0.5 * free["dropped"]["1.25"],
        "drops fall as capacity grows": all(
            all(a >= b for a, b in zip(list(r["dropped"].values()), list(r["dropped"].values())[1:], strict=False))
            for r in rows.values()
        ),
    }
    with figure(out, "moe-routing", ncols=2) as (a, b):
        width = 0.4
        for i, (name, r) in enumerate(rows.items()):
            a.bar([e + i * width for e in range(EXPERTS)], r["load"], width, label=name)
            b.plot(FACTORS, list(r["dropped"].values()), "o-", label=name)
        a.axhline(1 / EXPERTS, color="grey", ls=":")
        a.set_xlabel("expert")
        a.set_ylabel("share of tokens (top-1)")
        a.legend(fontsize=7)
        b.set_xlabel("capacity factor")
        b.set_ylabel("share of tokens dropped")
    numbers = {"steps": steps, "experts": EXPERTS, "top_k": TOP_K, "rows": rows, "checks": checks}
    return Finding(all(checks.values()), numbers, [str(out / "moe-routing.png")])
