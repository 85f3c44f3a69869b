"""Run by torchrun in tests: train a tiny config under [parallel] mode; write each rank's state bytes, norm and
dropout inputs, the first masks of its dropout layers, and the parameters it holds whole."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.tensor import DTensor, Replicate

from tfdojo.nn.norms import LayerNorm, RMSNorm
from tfdojo.train import Trainer
from tfdojo.train.config import TrainConfig
from tfdojo.train.parallel.measure import local_state_bytes, module_inputs


def first_masks(model: nn.Module) -> tuple[dict[str, Tensor], list]:
    """Hooks that keep each dropout layer's first mask: True where a nonzero input came out zero."""
    masks: dict[str, Tensor] = {}

    def keep(name: str, inputs: tuple, output: Tensor) -> None:
        if name not in masks:
            masks[name] = (output == 0) & (inputs[0] != 0)

    handles = [
        m.register_forward_hook(lambda _, i, o, name=name: keep(name, i, o))
        for name, m in model.named_modules()
        if isinstance(m, nn.Dropout)
    ]
    return masks, handles


def whole_parameters(model: nn.Module) -> dict[str, Tensor]:
    """The parameters this rank holds whole (plain tensors and replicated DTensors), which every rank must agree on."""
    return {
        name: (p.to_local() if isinstance(p, DTensor) else p).detach()
        for name, p in model.named_parameters()
        if not isinstance(p, DTensor) or all(isinstance(pl, Replicate) for pl in p.placements)
    }


def main(config_json: str, run_dir: str, steps: int) -> None:
    trainer = Trainer(TrainConfig.from_dict(json.loads(config_json)), run_dir, progress=False)
    masks, handles = first_masks(trainer.train_model)
    with module_inputs(trainer.train_model, (LayerNorm, RMSNorm, nn.Dropout)) as seen:  # one set of saved-tensor hooks
        trainer.run(steps)
    for handle in handles:
        handle.remove()
    drops = {name: seen.pop(name) for name in masks}
    norms = seen
    rank, out = trainer.par.rank, Path(run_dir)
    bytes_held = local_state_bytes(trainer.train_model, trainer.optimizer)
    (out / f"state_bytes_rank{rank}.json").write_text(json.dumps(bytes_held))
    (out / f"norm_inputs_rank{rank}.json").write_text(json.dumps(norms))
    (out / f"dropout_inputs_rank{rank}.json").write_text(json.dumps(drops))
    torch.save({"masks": masks, "whole": whole_parameters(trainer.train_model)}, out / f"dropout_rank{rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
