"""A training-layout planner: search TP × PP × DP × ZeRO stage × recomputation for the fastest layout that fits.

Every candidate is costed with the formulas in ``tfdojo.calc.parallel`` (memory per GPU, bytes on the wire) and a
plain step-time model; the answer shows the chosen layout's working like any other calculator.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

from tfdojo.calc.describe import describe
from tfdojo.calc.flops import flops_per_token
from tfdojo.calc.hardware import Accelerator, get_accelerator
from tfdojo.calc.parallel import (
    ActivationShape,
    activation_memory,
    dp_comm,
    pp_bubble,
    pp_comm,
    tp_comm,
    zero_memory,
)
from tfdojo.calc.params import param_count
from tfdojo.calc.result import Result, Step
from tfdojo.errors import ConfigError, InfeasiblePlanError

GIB = 2**30


@dataclass(frozen=True)
class ModelShape:
    """The numbers a parallel layout depends on: parameters, depth, width, heads, and training FLOPs per token."""

    name: str
    params: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    train_flops: float  # per token, forward + backward, at the job's sequence length
    recompute_flops: float  # the same with the forward run twice (full activation recomputation)


def model_shape(model: object, seq_len: int) -> ModelShape:
    """Shape of anything ``describe`` reads, through ``describe``, ``param_count`` and ``flops_per_token``."""
    arch = describe(model)
    name = str(model) if isinstance(model, str | os.PathLike) else arch.family
    return ModelShape(
        name,
        param_count(arch).value,
        arch.n_layers,
        arch.dim,
        arch.n_heads,
        arch.n_kv_heads,
        flops_per_token(arch, seq_len).value,
        flops_per_token(arch, seq_len, recompute=True).value,
    )


@dataclass(frozen=True)
class Cluster:
    """GPUs of one kind, grouped in NVLink nodes, joined by a network of the given per-GPU bandwidth."""

    gpus: int
    accelerator: Accelerator
    gpus_per_node: int = 8
    network_bytes_per_s: float = 50e9  # 400 Gb/s InfiniBand NDR per GPU, the usual H100 pod

    def __post_init__(self) -> None:
        if self.gpus <= 0 or self.gpus_per_node <= 0 or self.network_bytes_per_s <= 0:
            raise ConfigError(f"GPU counts and bandwidth must be positive, got {self}")


@dataclass(frozen=True)
class TrainingJob:
    """What one optimizer step processes, and how much of peak the kernels are assumed to reach."""

    seq_len: int = 4096
    global_batch: int = 1024  # sequences per optimizer step (Llama 2: 4M tokens = 1024 × 4096)
    micro_batch: int = 1
    kernel_efficiency: float = 0.5  # fraction of dense peak the matmuls reach
    memory_headroom: float = 0.9  # fraction of GPU memory usable (CUDA context, fragmentation)

    def __post_init__(self) -> None:
        if min(self.seq_len, self.global_batch, self.micro_batch) <= 0:
            raise ConfigError(f"seq_len, global_batch and micro_batch must be positive, got {self}")
        if not (0 < self.kernel_efficiency <= 1 and 0 < self.memory_headroom <= 1):
            raise ConfigError("kernel_efficiency and memory_headroom must lie in (0, 1]")


@dataclass(frozen=True)
class Layout:
    """One parallel layout: tensor × pipeline × data ranks, ZeRO stage, sequence parallelism, recomputation."""

    tp: int
    pp: int
    dp: int
    zero_stage: int
    recompute: bool
    micro_batches: int

    def __str__(self) -> str:
        sp = " + SP" if self.tp > 1 else ""
        rc = ", full recompute" if self.recompute else ""
        return f"TP={self.tp}{sp} × PP={self.pp} × DP={self.dp}, ZeRO-{self.zero_stage}, m={self.micro_batches}{rc}"


@dataclass(frozen=True)
class Plan:
    """A costed layout: memory per GPU and an estimated step time, each with its working."""

    layout: Layout
    memory: Result
    step_time: Result
    capacity_bytes: float

    @property
    def fits(self) -> bool:
        """Whether the memory per GPU is within the usable capacity."""
        return self.memory.value <= self.capacity_bytes

    def to_result(self) -> Result:
        """One Result for printing: value = memory per GPU, with the time estimate among the steps."""
        fit = Step(
            "fits?",
            "memory per GPU ≤ usable memory",
            f"{self.memory.value / GIB:.1f} GiB ≤ {self.capacity_bytes / GIB:.1f} GiB",
            float(self.fits),
        )
        return Result(
            name=f"plan: {self.layout}",
            value=self.memory.value,
            unit="bytes",
            steps=(*self.memory.steps, fit, *self.step_time.steps),
            assumptions=(*self.memory.assumptions, *self.step_time.assumptions),
            parts={**self.memory.parts, "step time (s)": self.step_time.value},
        )


def layout_memory(shape: ModelShape, layout: Layout, job: TrainingJob) -> Result:
    """Bytes per GPU: this rank's share of model states (÷ TP·PP, ZeRO over DP) plus its in-flight activations."""
    local_params = shape.params / (layout.tp * layout.pp)
    states = zero_memory(local_params, layout.dp, layout.zero_stage)
    # 1F1B keeps min(p, m) micro-batches in flight on the first stage, each through L/p layers
    layers_held = shape.layers / layout.pp * min(layout.pp, layout.micro_batches)
    acts = activation_memory(
        ActivationShape(max(1, round(layers_held)), shape.hidden, shape.heads, job.seq_len, job.micro_batch),
        tp=layout.tp,
        sequence_parallel=layout.tp > 1,
        recompute=layout.recompute,
    )
    value = states.value + acts.value
    split = Step(
        "parameters on this rank", "Ψ / (t · p)", f"{shape.params:.4g} / ({layout.tp} · {layout.pp})", local_params
    )
    total = Step(
        "memory per GPU", "model states + activations", f"{states.value:.4g} + {acts.value:.4g}", value, "bytes"
    )
    return Result(
        name="memory per GPU",
        value=value,
        unit="bytes",
        steps=(split, *states.steps, *acts.steps, total),
        assumptions=(*states.assumptions, *acts.assumptions, "1F1B schedule; sequence parallelism whenever t > 1"),
        parts={**states.parts, "activations": acts.value},
    )


def layout_step_time(shape: ModelShape, layout: Layout, job: TrainingJob, cluster: Cluster) -> Result:
    """Seconds per optimizer step: matmul time stretched by the pipeline bubble, TP/PP traffic, exposed DP traffic."""
    acc = cluster.accelerator
    tokens = job.global_batch * job.seq_len
    per_token = shape.recompute_flops if layout.recompute else shape.train_flops
    flops = per_token * tokens
    compute = flops / (cluster.gpus * acc.flops("bfloat16") * job.kernel_efficiency)
    bubble = pp_bubble(layout.pp, layout.micro_batches).value
    pipelined = compute / (1 - bubble)
    layers = shape.layers // layout.pp
    link = acc.nvlink_bytes_per_s / 2  # the datasheet figure counts both directions
    tp_bytes = tp_comm(
        layers, shape.hidden, job.seq_len, job.micro_batch, layout.tp, micro_batches=layout.micro_batches
    )
    tp_s = tp_bytes.value / (link if layout.tp <= cluster.gpus_per_node else cluster.network_bytes_per_s)
    pp_s = (
        pp_comm(shape.hidden, job.seq_len, job.micro_batch, layout.micro_batches).value / cluster.network_bytes_per_s
        if layout.pp > 1
        else 0.0
    )
    dp_s = dp_comm(shape.params / (layout.tp * layout.pp), layout.dp, layout.zero_stage).value / (
        cluster.network_bytes_per_s
    )
    backward = compute * (1 - shape.train_flops / 3 / per_token)  # all but the first forward (a third of training)
    dp_exposed = max(0.0, dp_s - backward)  # bucketed gradient collectives run under the backward pass
    value = pipelined + tp_s + pp_s + dp_exposed
    return Result(
        name="step time",
        value=value,
        unit="s",
        steps=(
            Step(
                "step FLOPs",
                "FLOPs per token · tokens",
                f"{per_token:.4g} · {tokens}",
                flops,
                "FLOP",
            ),
            Step(
                "compute",
                "FLOPs / (GPUs · peak · efficiency)",
                f"{flops:.4g} / ({cluster.gpus} · {acc.flops('bfloat16'):.4g} · {job.kernel_efficiency})",
                compute,
                "s",
            ),
            Step("with bubble", "compute / (1 − bubble)", f"{compute:.4g} / (1 − {bubble:.4f})", pipelined, "s"),
            Step("TP traffic", "bytes / link", f"{tp_bytes.value:.4g} B", tp_s, "s"),
            Step("PP traffic", "bytes / network", f"{cluster.network_bytes_per_s:.4g} B/s", pp_s, "s"),
            Step("DP traffic", "bytes / network", f"{cluster.network_bytes_per_s:.4g} B/s", dp_s, "s"),
            Step("DP exposed", "max(0, DP − backward)", f"max(0, {dp_s:.3g} − {backward:.3g})", dp_exposed, "s"),
            Step(
                "step",
                "pipelined + TP + PP + DP exposed",
                f"{pipelined:.4g} + {tp_s:.3g} + {pp_s:.3g} + {dp_exposed:.3g}",
                value,
                "s",
            ),
        ),
        assumptions=(
            f"matmuls reach {job.kernel_efficiency:.0%} of the dense bf16 peak of {acc.description}",
            "TP and PP transfers wait on the critical path; DP collectives overlap the backward pass",
            f"TP inside a node over NVLink ({link / 1e9:.0f} GB/s each way); PP and DP over "
            f"{cluster.network_bytes_per_s / 1e9:.0f} GB/s per GPU",
        ),
    )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def candidate_layouts(shape: ModelShape, job: TrainingJob, cluster: Cluster) -> list[Layout]:
    """Every layout whose degrees divide the GPUs, the heads and the layers, and whose batch splits evenly."""
    layouts = []
    for tp in _divisors(cluster.gpus):
        if tp > cluster.gpus_per_node or shape.heads % tp or shape.kv_heads % tp:
            continue
        for pp in _divisors(cluster.gpus // tp):
            if shape.layers % pp:
                continue
            dp = cluster.gpus // (tp * pp)
            if job.global_batch % (dp * job.micro_batch):
                continue
            m = job.global_batch // (dp * job.micro_batch)
            # ZeRO-2/3 shard gradients that pipeline micro-batches keep accumulating: DeepSpeed allows only
            # stage 0–1 together with pipeline parallelism
            stages = (0, 1, 2, 3) if pp == 1 else (0, 1)
            for zero, recompute in itertools.product(stages, (False, True)):
                layouts.append(Layout(tp, pp, dp, zero, recompute, m))
    return layouts


def propose_plan(
    model: object,
    gpus: int,
    gpu: str = "h100-80gb",
    job: TrainingJob | None = None,
    cluster: Cluster | None = None,
) -> Plan:
    """The fastest layout that fits ``model`` (anything ``describe`` reads) for training on ``gpus`` × ``gpu``."""
    job = job or TrainingJob()
    cluster = cluster or Cluster(gpus, get_accelerator(gpu))
    shape = model_shape(model, job.seq_len)
    capacity = cluster.accelerator.memory_bytes * job.memory_headroom
    plans = [
        Plan(layout, layout_memory(shape, layout, job), layout_step_time(shape, layout, job, cluster), capacity)
        for layout in candidate_layouts(shape, job, cluster)
    ]
    if not plans:
        raise InfeasiblePlanError(
            f"no layout divides evenly: {gpus} GPUs, {shape.layers} layers, {shape.heads} heads, global batch "
            f"{job.global_batch}; choose a GPU count that is a power of two or a batch divisible by it"
        )
    fitting = [p for p in plans if p.fits]
    if not fitting:
        best = min(plans, key=lambda p: p.memory.value)
        raise InfeasiblePlanError(
            f"{shape.name} does not fit for training on {gpus} × {cluster.accelerator.description}: the leanest "
            f"layout ({best.layout}) still needs {best.memory.value / GIB:.0f} GiB per GPU and "
            f"{capacity / GIB:.0f} GiB is usable. Use more GPUs, GPUs with more memory, or a shorter sequence."
        )
    return min(fitting, key=lambda p: (p.step_time.value, p.memory.value))
