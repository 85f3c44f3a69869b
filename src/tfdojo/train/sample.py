"""Generate text from a training run's newest checkpoint (``tfdojo sample DIR``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from tfdojo.errors import CheckpointError
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.sampling import SamplingConfig, sample
from tfdojo.models.variants import VariantLM
from tfdojo.train.checkpoint import latest_checkpoint, load_checkpoint
from tfdojo.train.config import TrainConfig
from tfdojo.train.tokenizer import TrainTokenizer, tokenizer_from_json


def load_run(run_dir: str | Path) -> tuple[VariantLM, TrainTokenizer, int]:
    """The model of the newest checkpoint (eval mode), the run's tokenizer, and the step it was saved at."""
    run_dir = Path(run_dir)
    for name in ("config.json", "tokenizer.json"):
        if not (run_dir / name).is_file():
            raise CheckpointError(f"{run_dir} is not a training run: {name} is missing (train with tfdojo train)")
    config = TrainConfig.from_dict(
        json.loads((run_dir / "config.json").read_text()), where=str(run_dir / "config.json")
    )
    state = load_checkpoint(latest_checkpoint(run_dir))
    model = VariantLM(config.model)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"the checkpoint in {run_dir} does not fit its config.json ({e})") from None
    tokenizer = tokenizer_from_json((run_dir / "tokenizer.json").read_text(encoding="utf-8"))
    return model.eval(), tokenizer, int(state["step"])


@torch.no_grad()
def sample_text(
    model: VariantLM,
    tokenizer: TrainTokenizer,
    prompt: str,
    *,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 40,
    seed: int | None = 0,
    stream: Callable[[str], object] | None = None,
) -> str:
    """Continue ``prompt`` with the KV cache; stops at the end-of-document token or the context limit."""
    ids = tokenizer.encode(prompt) or [tokenizer.eos_id]
    room = model.config.max_seq_len - len(ids)
    max_new_tokens = max(0, min(max_new_tokens, room))
    cache = StaticKVCache.for_model(model, 1, len(ids) + max_new_tokens)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    config = SamplingConfig(temperature, top_k, None)
    logits = model(torch.tensor([ids]), cache=cache)[:, -1]  # (1, V)
    out: list[int] = []
    for _ in range(max_new_tokens):
        token = int(sample(logits, config, generator))
        if token == tokenizer.eos_id:
            break
        out.append(token)
        if stream is not None:
            stream(tokenizer.decode([token]))
        if len(out) == max_new_tokens:
            break
        logits = model(torch.tensor([[token]]), cache=cache)[:, -1]
    return tokenizer.decode(out)
