"""The planner: a feasible layout for Llama-2-70B on 64 H100s, clear errors when nothing fits."""

import pytest

from tfdojo.calc.hardware import get_accelerator
from tfdojo.calc.planner import TrainingJob, propose_plan
from tfdojo.errors import ConfigError, InfeasiblePlanError, UnknownModelError
from tfdojo.models.presets import preset_config

GIB = 2**30
LLAMA2_70B = 68_976_648_192  # published exact count; 80 layers, d=8192, 64 heads, 8 KV heads


def test_llama2_70b_on_64_h100() -> None:
    plan = propose_plan("llama-2-70b", 64, "h100-80gb")
    lay = plan.layout
    assert lay.tp * lay.pp * lay.dp == 64
    assert lay.tp <= 8 and 64 % lay.tp == 0 and 80 % lay.pp == 0 and 8 % lay.tp == 0
    assert lay.micro_batches * lay.dp == 1024  # micro-batch 1, global batch 1024 sequences
    # model states by hand from the ZeRO formulas for this rank's share Ψ/(t·p)
    psi = LLAMA2_70B / (lay.tp * lay.pp)
    sharded = {0: 0, 1: 12, 2: 14, 3: 16}[lay.zero_stage]
    states = (16 - sharded) * psi + sharded * psi / lay.dp
    parts = plan.memory.parts
    assert parts["weights"] + parts["gradients"] + parts["optimizer"] == pytest.approx(states)
    assert plan.memory.value <= 0.9 * 80 * GIB
    assert plan.fits
    # plain data parallelism would need 16 bytes × 69B = 1.1 TB per GPU: the planner must have sharded
    assert (lay.tp, lay.pp, lay.zero_stage) != (1, 1, 0)


def test_result_shows_working() -> None:
    r = propose_plan("llama-2-70b", 64, "h100-80gb").to_result()
    assert r.name.startswith("plan: TP=")
    assert r.unit == "bytes" and r.steps and r.assumptions
    assert r.parts["step time (s)"] > 0


def test_small_model_on_one_gpu_needs_no_parallelism() -> None:
    plan = propose_plan("smollm2-135m", 1, "a100-40gb", TrainingJob(seq_len=2048, global_batch=64))
    assert (plan.layout.tp, plan.layout.pp, plan.layout.dp) == (1, 1, 1)


def test_70b_on_one_40gb_gpu_is_impossible() -> None:
    with pytest.raises(InfeasiblePlanError, match="does not fit") as e:
        propose_plan("llama-2-70b", 1, "a100-40gb")
    assert "GiB" in str(e.value)  # says how much it would need against what there is


def test_no_even_split_is_a_clear_error() -> None:
    with pytest.raises(InfeasiblePlanError, match="divides evenly"):
        propose_plan("llama-2-70b", 7, "h100-80gb")


def test_more_memory_allows_fewer_gpus_to_fit() -> None:
    job = TrainingJob(seq_len=4096, global_batch=64)
    with pytest.raises(InfeasiblePlanError):
        propose_plan("llama-2-7b", 1, "a100-40gb", job)
    assert propose_plan("llama-2-7b", 8, "a100-40gb", job).fits


def test_bad_names_and_numbers() -> None:
    with pytest.raises(UnknownModelError):
        propose_plan("llama-9-9b", 8)
    with pytest.raises(ConfigError):
        propose_plan("llama-2-7b", 8, "tpu-v9")
    with pytest.raises(ConfigError):
        TrainingJob(seq_len=0)
    with pytest.raises(ConfigError):
        TrainingJob(memory_headroom=1.5)
    assert get_accelerator("h100").name == "h100-80gb"


def test_accepts_a_config_object() -> None:
    job = TrainingJob(seq_len=2048, global_batch=64)
    by_config = propose_plan(preset_config("llama-2-13b"), 16, "a100-80gb", job)
    assert by_config.layout == propose_plan("llama-2-13b", 16, "a100-80gb", job).layout
