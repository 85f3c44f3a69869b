"""Pre-LN vs post-LN (Xiong et al., 2020, "On Layer Normalization in the Transformer Architecture").

At initialisation a post-LN stack sends large gradients to the layers near its output, while pre-LN's shrink with
depth (Theorem 1: the last layer's gradient is O(d·√(ln d)) for post-LN, O(d·√(ln d / L)) for pre-LN); so post-LN
needs a learning-rate warm-up and pre-LN does not. The theorem assumes the plain (Xavier) init of the paper: GPT-2's
1/√(2L) scaling of the residual projections shrinks every sub-layer's output and hides the effect, so it is not used.
The models are byte-level language models on Shakespeare (``tfdojo.train.corpus``), validated on a held-out play.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from tfdojo.lab.figures import figure
from tfdojo.lab.result import Finding
from tfdojo.loading import one_thread
from tfdojo.models.variants import VariantConfig, VariantLM
from tfdojo.train.corpus import shakespeare

LAYOUTS = ("pre", "post")


@dataclass(frozen=True)
class Setup:
    """Model and training sizes for one run of the experiment."""

    dim: int = 64
    n_layers: int = 6
    seq_len: int = 64
    batch: int = 16
    steps: int = 300
    warmup: int = 100
    lr: float = 3e-3  # high enough that post-LN without warm-up stalls (at 1e-2 it stalls even with 50 steps)


FULL, QUICK = Setup(), Setup(seq_len=32, steps=200, warmup=80)


def config(layout: str, n_layers: int, s: Setup) -> VariantConfig:
    """A byte-level LayerNorm Transformer (GELU MLP, biases) in the given block layout."""
    return VariantConfig(
        vocab_size=256,
        dim=s.dim,
        n_layers=n_layers,
        n_heads=4,
        ffn_hidden=4 * s.dim,
        max_seq_len=s.seq_len,
        norm="layernorm",
        layout=layout,
        ffn="gelu",
        bias=True,
        tie_embeddings=False,
    )


def xavier_init(model: nn.Module) -> nn.Module:
    """The paper's init: Xavier-normal matrices, zero biases, unit-variance embeddings; no residual scaling."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(0.0, 1.0)
    return model


def byte_tensors() -> tuple[Tensor, Tensor]:
    """Training bytes (the first two training plays) and validation bytes (a held-out play)."""
    corpus = shakespeare()
    train = b"".join(d.text.encode() for d in corpus.train[:2])
    return torch.tensor(list(train), dtype=torch.long), torch.tensor(list(corpus.val[0].text.encode()))


def sample(data: Tensor, batch: int, seq_len: int, generator: torch.Generator) -> Tensor:
    """(batch, seq_len + 1) random windows of ``data``."""
    starts = torch.randint(0, len(data) - seq_len - 1, (batch,), generator=generator)
    return torch.stack([data[i : i + seq_len + 1] for i in starts.tolist()])


def loss_of(model: nn.Module, x: Tensor) -> Tensor:
    """Mean next-byte cross-entropy of windows x (B, T + 1)."""
    logits = model(x[:, :-1])  # (B, T, 256)
    return nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())


def init_gradients(layout: str, n_layers: int, s: Setup, x: Tensor, init: Callable[[nn.Module], nn.Module]) -> list:
    """‖∂L/∂W₂‖ of each block's FFN output matrix at initialisation, first block to last."""
    torch.manual_seed(0)
    model = init(VariantLM(config(layout, n_layers, s)))
    loss_of(model, x).backward()
    return [block.ffn.proj.weight.grad.norm().item() for block in model.layers]


def train(layout: str, warmup: int, s: Setup, data: tuple[Tensor, Tensor]) -> dict:
    """Adam at ``s.lr`` (linear warm-up over ``warmup`` steps, or none), then the validation loss."""
    torch.manual_seed(0)
    model = xavier_init(VariantLM(config(layout, s.n_layers, s)))
    opt = torch.optim.Adam(model.parameters(), lr=s.lr, betas=(0.9, 0.98))  # the paper's betas
    generator = torch.Generator().manual_seed(1)
    curve = []
    for step in range(s.steps):
        for group in opt.param_groups:
            group["lr"] = s.lr * min(1.0, (step + 1) / warmup) if warmup else s.lr
        loss = loss_of(model, sample(data[0], s.batch, s.seq_len, generator))
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(loss.item())
    with torch.no_grad():
        val = loss_of(model, sample(data[1], 64, s.seq_len, torch.Generator().manual_seed(99))).item()
    return {"warmup_steps": warmup, "train_loss": curve, "val_loss": val}


def unigram_entropy(data: Tensor) -> float:
    """The loss (nats) of predicting every byte from the byte frequencies alone: where a stalled model sits."""
    p = torch.bincount(data, minlength=256).double() / len(data)
    return -(p[p > 0] * p[p > 0].log()).sum().item()


def gradient_checks(grads: dict[str, list[float]], n_layers: int) -> dict[str, bool]:
    """Theorem 1 on measured gradients: post-LN's last layer gets more, and the gap widens with depth."""
    ratio = {n: grads[f"post L={n}"][-1] / grads[f"pre L={n}"][-1] for n in (n_layers, 2 * n_layers)}
    return {
        f"post-LN's last-layer gradient > 1.5x pre-LN's (L={n_layers} and {2 * n_layers})": min(ratio.values()) > 1.5,
        "the gap widens with depth (pre-LN's last layer shrinks like 1/√L)": ratio[2 * n_layers]
        > 1.2 * ratio[n_layers],
    }


def run(out: Path, *, quick: bool = False, init: Callable[[nn.Module], nn.Module] = xavier_init) -> Finding:
    """Gradients at init for L and 2L layers; four training runs (pre/post × warm-up or not)."""
    s = QUICK if quick else FULL
    data = byte_tensors()
    x = sample(data[0], s.batch, s.seq_len, torch.Generator().manual_seed(0))
    depths = (s.n_layers, 2 * s.n_layers)
    with one_thread():  # tiny matrices: a second thread only adds synchronisation (and stalls on a busy machine)
        grads = {f"{lay} L={n}": init_gradients(lay, n, s, x, init) for n in depths for lay in LAYOUTS}
        runs = {f"{lay}, warm-up {w}": train(lay, w, s, data) for lay in LAYOUTS for w in (0, s.warmup)}
    val = {name: r["val_loss"] for name, r in runs.items()}
    pre, pre_warm = val["pre, warm-up 0"], val[f"pre, warm-up {s.warmup}"]
    post, post_warm = val["post, warm-up 0"], val[f"post, warm-up {s.warmup}"]
    checks = gradient_checks(grads, s.n_layers) | {
        "post-LN without warm-up ends > 0.3 nats worse than with it": post > post_warm + 0.3,
        "post-LN without warm-up ends > 0.3 nats worse than pre-LN": post > pre + 0.3,
        "pre-LN without warm-up is no worse than with it (within 0.1 nats)": pre < pre_warm + 0.1,
    }
    floor = unigram_entropy(data[1])
    with figure(out, "pre-post-ln", ncols=2, width=4.4) as (a, b):
        for name, g in grads.items():
            a.semilogy(range(1, len(g) + 1), g, "o-" if name.startswith("post") else "s--", label=name, ms=3)
        a.set_xlabel("layer")
        a.set_ylabel("‖∂L/∂W₂‖ at init")
        a.legend(fontsize=7)
        window = 10
        for name, r in runs.items():
            smooth = torch.tensor(r["train_loss"]).unfold(0, window, 1).mean(-1)  # (steps - window + 1,)
            b.plot(range(window, s.steps + 1), smooth, label=f"{name}: val {r['val_loss']:.2f}")
        b.axhline(floor, color="grey", ls=":", lw=0.8)
        b.set_xlabel(f"step (Adam, lr {s.lr:g})")
        b.set_ylabel("train loss (nats/byte)")
        b.legend(fontsize=7)
    numbers = {
        "setup": asdict(s),
        "grad_norm_ffn_out_at_init": grads,
        "val_loss": val,
        "unigram_entropy": floor,
        "train_loss": {name: r["train_loss"] for name, r in runs.items()},
        "checks": checks,
    }
    return Finding(all(checks.values()), numbers, [str(out / "pre-post-ln.png")])
