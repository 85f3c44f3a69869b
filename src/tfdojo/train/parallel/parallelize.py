"""Apply the training-time transformations to a single-device model, in torchtitan's order:

    1. tensor parallel (DTensor ``parallelize_module``)      -- changes what each rank's weights are
    2. activation checkpointing (per block)                 -- wraps blocks, so after TP rewrote them
    3. torch.compile (per block)                            -- compiles what will actually run
    4. FSDP2 ``fully_shard`` (per block, then the root)     -- shards last, over the final modules

Each step is optional; the order matters because each one wraps what the previous produced.
"""

from __future__ import annotations

from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper


def activation_checkpointing(model: nn.Module) -> nn.Module:
    """Recompute every block in backward instead of keeping its activations (Chen et al., 2016)."""
    for i, block in enumerate(model.layers):
        model.layers[i] = checkpoint_wrapper(block)
    return model


def compile_model(model: nn.Module) -> nn.Module:
    """Compile each block in place (small graphs; state-dict keys unchanged, so checkpoints stay portable)."""
    for block in model.layers:
        block.compile()
    return model
