"""Run by torchrun in tests: train a tiny config under [parallel] mode; write each rank's state bytes, norm inputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist

from tfdojo.train import Trainer
from tfdojo.train.config import TrainConfig
from tfdojo.train.parallel.measure import local_state_bytes, norm_inputs


def main(config_json: str, run_dir: str, steps: int) -> None:
    trainer = Trainer(TrainConfig.from_dict(json.loads(config_json)), run_dir, progress=False)
    with norm_inputs(trainer.train_model) as norms:
        trainer.run(steps)
    rank = trainer.par.rank
    bytes_held = local_state_bytes(trainer.train_model, trainer.optimizer)
    (Path(run_dir) / f"state_bytes_rank{rank}.json").write_text(json.dumps(bytes_held))
    (Path(run_dir) / f"norm_inputs_rank{rank}.json").write_text(json.dumps(norms))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
