"""Apply the training-time transformations to a single-device model, in torchtitan's order:

    1. tensor parallel (DTensor ``parallelize_module``)      -- changes what each rank's weights are
       (+ sequence parallel: norms and residuals on T/t positions per rank)
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
from tfdojo.nn.norms import LayerNorm, RMSNorm
from tfdojo.train.parallel.rng import per_rank_stream


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


def tensor_parallel(model: nn.Module, mesh: DeviceMesh, *, sequence_parallel: bool = False) -> nn.Module:
    """Split every block Megatron-style over ``mesh``: Q, K, V and the FFN's input projections by columns (heads),
    the attention output and FFN down projection by rows, so each block needs one all-reduce forward and one
    backward. Embeddings and the head stay replicated. Each rank's attention then sees its own heads::

        x ─┬─ q/k/v  (columns: heads 0..H/t on rank 0, …) ─ attention ─ o_proj (rows) ─ all-reduce ─ +x

    With ``sequence_parallel`` (Korthikanti et al., 2022, "Reducing Activation Recomputation in Large Transformer
    Models") the residual stream, the norms and the dropouts (embeddings, residual branches) work on T/t positions
    per rank; the all-reduce becomes a reduce-scatter over the sequence and an all-gather before each sublayer, the
    same bytes moved::

        x (B, T/t) ─ norm ─ all-gather ─ q/k/v … o_proj ─ reduce-scatter ─ dropout ─ (B, T/t) + x

    Dropout on what a rank holds alone (its heads' attention probabilities; its positions under sequence
    parallelism) draws from a stream of that rank's own (``rng.per_rank_stream``); dropout on replicated
    activations draws from the stream all ranks share, so they drop the same elements.
    """
    from torch.distributed.tensor import Replicate, Shard
    from torch.distributed.tensor.parallel import (
        ColwiseParallel,
        PrepareModuleInput,
        RowwiseParallel,
        SequenceParallel,
        parallelize_module,
    )

    tp, rank = mesh.size(), mesh.get_local_rank()
    # sequence parallel: sublayers gather their input from sequence shards and scatter their output back to them
    gather = PrepareModuleInput(input_layouts=Shard(1), desired_input_layouts=Replicate(), use_local_output=True)
    row = RowwiseParallel(output_layouts=Shard(1)) if sequence_parallel else RowwiseParallel()
    for block in model.layers:
        attn = block.attn
        if getattr(attn, "alibi", None) is not None or attn.backend not in ("eager", "sdpa", "tiled"):
            raise ConfigError("tensor parallel splits heads of eager/sdpa/tiled attention without ALiBi")
        plan = {"attn.q_proj": ColwiseParallel(), "attn.k_proj": ColwiseParallel(), "attn.v_proj": ColwiseParallel()}
        plan["attn.o_proj"] = row
        ffn_in = [name for name in ("gate", "up", "fc") if isinstance(getattr(block.ffn, name, None), nn.Linear)]
        ffn_out = [name for name in ("down", "proj") if isinstance(getattr(block.ffn, name, None), nn.Linear)]
        if not ffn_in or not ffn_out:
            raise ConfigError("tensor parallel needs a dense FFN (mlp, swiglu, geglu); MoE blocks are not split")
        plan |= {f"ffn.{name}": ColwiseParallel() for name in ffn_in}
        plan |= {f"ffn.{name}": row for name in ffn_out}
        if sequence_parallel:
            plan |= {"attn": gather, "ffn": gather}
            plan |= {name: SequenceParallel(use_local_output=True) for name in _norm_names(block)}
        parallelize_module(block, mesh, plan)
        attn.n_heads, attn.n_kv_heads = attn.n_heads // tp, attn.n_kv_heads // tp  # local heads on this rank
        own = ([attn] if attn.dropout else []) + (_dropouts(block) if sequence_parallel else [])
        for module in own:  # dropout on this rank's own heads, or on its own positions
            per_rank_stream(module, rank)
    if sequence_parallel:  # the embeddings are cut into sequence shards before their dropout, gathered at the head
        scatter = PrepareModuleInput(input_layouts=Replicate(), desired_input_layouts=Shard(1), use_local_output=True)
        plan = {"drop": scatter, "lm_head": gather}
        if isinstance(model.norm, (LayerNorm, RMSNorm)):
            plan["norm"] = SequenceParallel(use_local_output=True)
        parallelize_module(model, mesh, plan)
        for module in _dropouts(model):
            per_rank_stream(module, rank)
    return model


def _norm_names(block: nn.Module) -> list[str]:
    """The block's norms (two, or four in a sandwich block): the regions sequence parallelism splits."""
    return [name for name, child in block.named_children() if isinstance(child, (LayerNorm, RMSNorm))]


def _dropouts(module: nn.Module) -> list[nn.Module]:
    """The dropout layers directly under ``module``: a block's residual dropouts, or the model's embedding dropout."""
    return [child for child in module.children() if isinstance(child, nn.Dropout)]


def fully_shard_model(model: nn.Module, mesh: DeviceMesh) -> nn.Module:
    """FSDP2: shard each block, then the rest (embeddings, final norm, head), over ``mesh``."""
    from torch.distributed.fsdp import fully_shard

    for block in model.layers:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model
