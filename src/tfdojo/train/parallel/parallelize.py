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
from torch.distributed.device_mesh import DeviceMesh

from tfdojo.errors import ConfigError


def _block_keys(model: nn.Module) -> list[int | str]:
    """Keys of ``model.layers``: indices of a ModuleList, or the block names of a pipeline stage's ModuleDict."""
    layers = model.layers
    return list(layers.keys()) if isinstance(layers, nn.ModuleDict) else list(range(len(layers)))


def activation_checkpointing(model: nn.Module) -> nn.Module:
    """Recompute every block in backward instead of keeping its activations (Chen et al., 2016)."""
    for key in _block_keys(model):
        model.layers[key] = checkpoint_wrapper(model.layers[key])
    return model


def compile_model(model: nn.Module) -> nn.Module:
    """Compile each block in place (small graphs; state-dict keys unchanged, so checkpoints stay portable)."""
    for key in _block_keys(model):
        model.layers[key].compile()
    return model


def tensor_parallel(model: nn.Module, mesh: DeviceMesh) -> nn.Module:
    """Split every block Megatron-style over ``mesh``: Q, K, V and the FFN's input projections by columns (heads),
    the attention output and FFN down projection by rows, so each block needs one all-reduce forward and one
    backward. Embeddings, norms and the head stay replicated. Each rank's attention then sees its own heads::

        x ─┬─ q/k/v  (columns: heads 0..H/t on rank 0, …) ─ attention ─ o_proj (rows) ─ all-reduce ─ +x
    """
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    tp = mesh.size()
    for block in model.layers:
        attn = block.attn
        if getattr(attn, "alibi", None) is not None or attn.backend not in ("eager", "sdpa", "tiled"):
            raise ConfigError("tensor parallel splits heads of eager/sdpa/tiled attention without ALiBi")
        plan = {"attn.q_proj": ColwiseParallel(), "attn.k_proj": ColwiseParallel(), "attn.v_proj": ColwiseParallel()}
        plan["attn.o_proj"] = RowwiseParallel()
        ffn_in = [name for name in ("gate", "up", "fc") if isinstance(getattr(block.ffn, name, None), nn.Linear)]
        ffn_out = [name for name in ("down", "proj") if isinstance(getattr(block.ffn, name, None), nn.Linear)]
        if not ffn_in or not ffn_out:
            raise ConfigError("tensor parallel needs a dense FFN (mlp, swiglu, geglu); MoE blocks are not split")
        plan |= {f"ffn.{name}": ColwiseParallel() for name in ffn_in}
        plan |= {f"ffn.{name}": RowwiseParallel() for name in ffn_out}
        parallelize_module(block, mesh, plan)
        attn.n_heads, attn.n_kv_heads = attn.n_heads // tp, attn.n_kv_heads // tp  # local heads on this rank
    return model


def fully_shard_model(model: nn.Module, mesh: DeviceMesh) -> nn.Module:
    """FSDP2: shard each block, then the rest (embeddings, final norm, head), over ``mesh``."""
    from torch.distributed.fsdp import fully_shard

    for block in model.layers:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model
