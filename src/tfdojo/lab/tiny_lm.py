"""Tiny VariantLMs trained on the spot for lab experiments: the training recipe of `tfdojo.train` (GPT-2 init,
AdamW with decay on matrices only, warmup + cosine, gradient clipping) over any batch function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.loading import one_thread
from tfdojo.models.variants import VariantConfig, VariantLM
from tfdojo.train.config import OptimConfig, ScheduleConfig
from tfdojo.train.corpus import shakespeare
from tfdojo.train.init import init_weights
from tfdojo.train.optim import make_optimizer, set_lr
from tfdojo.train.packing import IGNORE
from tfdojo.train.schedule import lr_at
from tfdojo.train.tokenizer import CharTokenizer

Batches = Callable[[int], tuple[Tensor, Tensor]]  # step -> (input_ids (B, T), targets (B, T), IGNORE = no loss)


@dataclass(frozen=True)
class Recipe:
    """How long and how hard to train one tiny model."""

    steps: int
    lr: float = 3e-3
    warmup: int = 20
    weight_decay: float = 0.1
    seed: int = 0


def train(config: VariantConfig, batches: Batches, recipe: Recipe) -> VariantLM:
    """A freshly initialised model trained for ``recipe.steps`` steps of next-token cross-entropy; eval mode."""
    with one_thread():
        return _train(config, batches, recipe)


def _train(config: VariantConfig, batches: Batches, recipe: Recipe) -> VariantLM:
    torch.manual_seed(recipe.seed)
    model = init_weights(VariantLM(config), config.n_layers)
    optim = OptimConfig(lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = ScheduleConfig(warmup_steps=min(recipe.warmup, recipe.steps), max_steps=recipe.steps)
    optimizer = make_optimizer(model, optim)
    model.train()
    for step in range(recipe.steps):
        set_lr(optimizer, lr_at(step, recipe.lr, schedule))
        inputs, targets = batches(step)
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip or float("inf"))
        optimizer.step()
    return model.eval()


@dataclass(frozen=True)
class CharText:
    """Shakespeare as one character stream per split (training plays, held-out plays) and its tokenizer."""

    train: Tensor
    val: Tensor
    tokenizer: CharTokenizer

    @classmethod
    def load(cls, max_plays: int | None = None) -> CharText:
        corpus = shakespeare(max_plays=max_plays)
        tokenizer = CharTokenizer.fit([d.text for d in corpus.train + corpus.val])
        joined = {k: "\n".join(d.text for d in getattr(corpus, k)) for k in ("train", "val")}
        ids = {k: torch.tensor(tokenizer.encode(t), dtype=torch.long) for k, t in joined.items()}
        return cls(ids["train"], ids["val"], tokenizer)

    def batches(self, seq_len: int, batch_size: int, seed: int = 0) -> Batches:
        """Random training windows: step k's batch is a pure function of (seed, k)."""

        def batch(step: int) -> tuple[Tensor, Tensor]:
            g = torch.Generator().manual_seed(seed * 1_000_003 + step)
            starts = torch.randint(0, len(self.train) - seq_len - 1, (batch_size,), generator=g)
            rows = torch.stack([self.train[s : s + seq_len + 1] for s in starts.tolist()])  # (B, T+1)
            return rows[:, :-1], rows[:, 1:]

        return batch

    def held_out(self, seq_len: int, count: int) -> tuple[Tensor, Tensor]:
        """``count`` consecutive, non-overlapping validation windows of ``seq_len`` (inputs, targets)."""
        if count * (seq_len + 1) > len(self.val):
            raise ConfigError(f"{count} windows of {seq_len} exceed the {len(self.val):,} held-out characters")
        rows = self.val[: count * (seq_len + 1)].view(count, seq_len + 1)  # (N, T+1)
        return rows[:, :-1], rows[:, 1:]
