"""Training: next-token training on Shakespeare with exact resume, spike diagnostics and torch.distributed.

``TrainConfig.from_toml(path)`` reads a config; ``Trainer(config, run_dir).run()`` trains into ``run_dir``
(``metrics.jsonl``, ``loss.png``, ``checkpoints/``, ``config.json``, ``tokenizer.json``); the CLI is
``tfdojo train CONFIG --out DIR`` and ``tfdojo sample DIR``. See docs/training.md.
"""

from tfdojo.train.config import TrainConfig
from tfdojo.train.loop import Faults, RunSummary, Trainer

__all__ = ["Faults", "RunSummary", "TrainConfig", "Trainer"]
