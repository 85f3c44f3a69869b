"""Fine-tune the grading cross-encoder (``cross_encoder.py``) on (key point, sentence) pairs; run by hand, not by CI.

    .venv/bin/python -m tfdojo.practice.grading.train_cross                 # writes cross_encoder.safetensors + .json
    .venv/bin/python -m tfdojo.practice.grading.train_cross --epochs 1 --limit 200 --out /tmp/x.safetensors  # a try

The pairs come from ``pairs.py``: written ones (``bench/data/grading_pairs``) and automatic ones from the rubrics. The
split is by question: the held-out half of the labelled answers is never trained on (its pairs' accuracy is printed at
the end, for the record, and nothing is chosen from it); the calibration half is the development set unless
``--with-dev`` trains on it too.

The lower layers are frozen, so their outputs are computed once per pair and cached; each step runs only the adapted
top layers and the head. Deterministic for a seed on one torch build: seeded initialisation and batch order.
Loss: cross-entropy weighted by inverse class frequency (there are more "neither" pairs than the others).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor

from tfdojo.practice.grading.cross_encoder import RELATIONS, WEIGHTS, CrossConfig, CrossEncoder
from tfdojo.practice.grading.embedder import default_embedder
from tfdojo.practice.grading.pairs import Pair, PairSplit, all_pairs, split_pairs


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and schedule: AdamW, linear warm-up then linear decay to zero."""

    epochs: int = 5
    batch_size: int = 32
    lr: float = 5e-4
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.batch_size <= 0 or self.lr <= 0 or not 0 <= self.warmup < 1:
            raise ValueError(f"need positive epochs, batch size and lr, and 0 <= warmup < 1: {self}")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


@dataclass
class Cached:
    """The frozen layers' output for each pair (T_i, dim) in fp16, and its label index."""

    hidden: list[Tensor]
    labels: Tensor


def cache_lower(model: CrossEncoder, pairs: Sequence[Pair], progress: Progress, name: str, batch: int = 64) -> Cached:
    """Run the frozen layers once per pair (batched by length) and keep each pair's unpadded states."""
    hidden: list[Tensor | None] = [None] * len(pairs)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i].point) + len(pairs[i].sentence))
    task = progress.add_task(f"cache {name}", total=len(pairs), info="")
    for start in range(0, len(order), batch):
        index = order[start : start + batch]
        ids, type_ids, mask = model.tokenize([pairs[i].point for i in index], [pairs[i].sentence for i in index])
        states = model.lower(ids, type_ids, mask)  # (B, T, dim)
        for row, i in enumerate(index):
            hidden[i] = states[row, : int(mask[row].sum())].to(torch.float16)
        progress.advance(task, len(index))
    labels = torch.tensor([RELATIONS.index(p.relation) for p in pairs])
    return Cached([h for h in hidden if h is not None], labels)


def _batch(cached: Cached, index: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
    """Padded states (B, T, dim), attention mask (B, T) and labels (B,) of some cached pairs."""
    rows = [cached.hidden[i].float() for i in index]
    hidden = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (B, T, dim)
    lengths = torch.tensor([len(r) for r in rows])
    mask = (torch.arange(hidden.shape[1])[None, :] < lengths[:, None]).long()  # (B, T)
    return hidden, mask, cached.labels[list(index)]


def batches(cached: Cached, size: int, rng: random.Random | None) -> list[list[int]]:
    """Index batches of pairs of similar length (little padding), in a seeded random order when ``rng`` is given."""
    order = sorted(range(len(cached.hidden)), key=lambda i: len(cached.hidden[i]))
    if rng is not None:  # shuffle within windows of similar length, then the batches themselves
        windows = [order[i : i + size * 8] for i in range(0, len(order), size * 8)]
        order = [i for w in windows for i in rng.sample(w, len(w))]
    out = [order[i : i + size] for i in range(0, len(order), size)]
    if rng is not None:
        rng.shuffle(out)
    return out


@torch.no_grad()
def predict(model: CrossEncoder, cached: Cached, size: int = 128) -> Tensor:
    """Predicted relation index for every cached pair."""
    model.eval()
    out = torch.empty(len(cached.hidden), dtype=torch.long)
    for index in batches(cached, size, None):
        hidden, mask, _ = _batch(cached, index)
        out[index] = model.upper(hidden, mask).argmax(-1)
    model.train()
    return out


def report(pairs: Sequence[Pair], predicted: Tensor) -> dict:
    """Accuracy overall, recall per relation and accuracy per source (written style or automatic kind)."""
    truth = [RELATIONS.index(p.relation) for p in pairs]
    right = [int(t == int(y)) for t, y in zip(truth, predicted, strict=True)]

    def share(keep: Sequence[bool]) -> dict:
        n = sum(keep)
        return {"n": n, "accuracy": round(sum(r for r, k in zip(right, keep, strict=True) if k) / max(n, 1), 4)}

    return {
        "n": len(pairs),
        "accuracy": round(sum(right) / max(len(pairs), 1), 4),
        "per_relation": {r: share([p.relation == r for p in pairs]) for r in RELATIONS},
        "per_source": {s: share([p.source == s for p in pairs]) for s in sorted({p.source for p in pairs})},
    }


def train(
    model: CrossEncoder,
    train_set: Cached,
    dev: Cached | None,
    config: TrainConfig,
    progress: Progress,
    after_epoch: Callable[[list[dict]], None] | None = None,
) -> list[dict]:
    """Fit the LoRA factors, top-layer norms and head; returns the loss and dev accuracy after each epoch.

    ``after_epoch`` is handed the history so far at the end of each epoch (``main`` saves the weights there, so a run
    cut short keeps its last finished epoch)."""
    rng = random.Random(config.seed)
    counts = torch.bincount(train_set.labels, minlength=3).float()
    weight = counts.sum() / (3 * counts.clamp(min=1))  # inverse class frequency, mean 1 over a balanced set
    head = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("head.")]
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    optimizer = torch.optim.AdamW(
        [{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}], weight_decay=config.weight_decay
    )
    steps = config.epochs * len(batches(train_set, config.batch_size, None))
    warm = max(1, int(config.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    task = progress.add_task("train", total=steps, info="")
    history, step = [], 0
    model.train()
    for epoch in range(config.epochs):
        total, seen = 0.0, 0
        for index in batches(train_set, config.batch_size, rng):
            hidden, mask, labels = _batch(train_set, index)
            loss = torch.nn.functional.cross_entropy(model.upper(hidden, mask), labels, weight=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total, seen, step = total + float(loss.detach()) * len(index), seen + len(index), step + 1
            progress.update(task, advance=1, info=f"epoch {epoch + 1} loss {total / seen:.3f}")
        row = {"epoch": epoch + 1, "loss": round(total / seen, 4)}
        if dev is not None:
            row["dev_accuracy"] = round(float((predict(model, dev) == dev.labels).float().mean()), 4)
        progress.console.print(row)
        history.append(row)
        if after_epoch is not None:
            after_epoch(history)
    return history


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (two spin against other jobs on a shared 2-core box)"
    )
    parser.add_argument("--frozen-layers", type=int, default=CrossConfig.frozen_layers)
    parser.add_argument("--rank", type=int, default=CrossConfig.rank)
    parser.add_argument("--with-dev", action="store_true", help="train on the calibration half's pairs too")
    parser.add_argument(
        "--limit", type=int, default=0, help="use a sample of this many pairs of each part (a quick try)"
    )
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed)

    from tfdojo.practice import load_bank

    split = split_pairs(all_pairs(load_bank(), seed=args.seed))
    if args.limit:  # a quick try: a seeded sample of each part
        parts = (split.train, split.dev, split.test)
        split = PairSplit(*(tuple(random.Random(args.seed).sample(p, min(args.limit, len(p)))) for p in parts))
    train_pairs = list(split.train) + (list(split.dev) if args.with_dev else [])
    model = CrossEncoder(default_embedder(), CrossConfig(frozen_layers=args.frozen_layers, rank=args.rank))
    questions = sorted({p.question for p in train_pairs})
    trained_on = (
        f"{len(train_pairs)} pairs of {len(questions)} questions, none of the held-out half "
        f"({'with' if args.with_dev else 'without'} the calibration half)"
    )
    train_facts = vars(config) | {"pairs": dict(Counter(p.relation for p in train_pairs))}

    def save_unfinished(history: list[dict]) -> None:
        """Each finished epoch's weights, marked unfinished until the last one (held-out pairs not yet read)."""
        if len(history) < config.epochs:
            model.save(args.out, trained_on=trained_on, train=train_facts, history=history, unfinished=True)

    started = time.perf_counter()
    with _progress() as progress:
        progress.console.print(
            f"pairs: train {len(train_pairs)} {dict(Counter(p.relation for p in train_pairs))}, "
            f"dev {len(split.dev)}, held-out {len(split.test)}"
        )
        train_cache = cache_lower(model, train_pairs, progress, "train")
        dev_cache = None if args.with_dev else cache_lower(model, split.dev, progress, "dev")
        history = train(model, train_cache, dev_cache, config, progress, after_epoch=save_unfinished)
        test_cache = cache_lower(model, split.test, progress, "held-out")
    dev = None if dev_cache is None else report(split.dev, predict(model, dev_cache))
    test = report(split.test, predict(model, test_cache))
    digest = model.save(
        args.out,
        trained_on=trained_on,
        train=train_facts,
        history=history,
        dev=dev,
        held_out=test,
        seconds=round(time.perf_counter() - started, 1),
    )
    print(f"held-out pairs: accuracy {test['accuracy']}, per relation {test['per_relation']}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, sha256 {digest[:12]}…)")


if __name__ == "__main__":
    main()
