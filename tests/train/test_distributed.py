"""torch.distributed on CPU (gloo) under torchrun: every layout trains like one process, and holds what calc says."""

from __future__ import annotations

import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY, tiny_config
from tfdojo.calc.parallel import zero_memory
from tfdojo.calc.params import param_count
from tfdojo.train import Trainer
from tfdojo.train.metrics import read_metrics
from tfdojo.train.parallel.measure import dropout_inputs, norm_inputs

STEPS = 10
SCRIPT = Path(__file__).with_name("dist_run.py")
# micro-batch per data shard; the one-process reference reads all shards at once
PER_RANK = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(procs: int, sections: dict, run_dir: Path, steps: int = STEPS) -> None:
    config = {name: {**TINY.get(name, {}), **sections.get(name, {})} for name in {*TINY, *sections}}
    command = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={procs}", f"--master-port={_free_port()}",
        str(SCRIPT), json.dumps(config), str(run_dir), str(steps),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=_env())
    assert result.returncode == 0, result.stderr[-4000:]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}


def _losses(run_dir: Path) -> torch.Tensor:
    return torch.tensor([r["loss"] for r in read_metrics(run_dir)], dtype=torch.float64)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[int, tuple[torch.Tensor, dict]]:
    """One-process loss curves with the micro-batch of 1 and of 2 data shards, and what its norms received."""
    curves = {}
    for shards in (1, 2):
        run = tmp_path_factory.mktemp(f"one_process_{shards}")
        trainer = Trainer(tiny_config(run={"micro_batch": PER_RANK * shards}), run, progress=False)
        with norm_inputs(trainer.train_model) as norms:
            trainer.run(STEPS)
        curves[shards] = _losses(run), norms
    return curves


LAYOUTS = [
    ("ddp", 2, {}, 2),
    ("fsdp", 2, {}, 2),
    ("tp", 2, {}, 1),
    ("tp", 2, {"sequence_parallel": True}, 1),
    ("fsdp_tp", 4, {"tp_size": 2}, 2),
]
LAYOUT_IDS = ["ddp", "fsdp", "tp", "tp_sp", "fsdp_tp"]


@pytest.mark.parametrize(("mode", "procs", "extra", "shards"), LAYOUTS, ids=LAYOUT_IDS)
def test_each_layout_follows_the_one_process_curve(reference, tmp_path: Path, mode, procs, extra, shards) -> None:
    sections = {"parallel": {"mode": mode, **extra}, "run": {"micro_batch": PER_RANK}}
    _torchrun(procs, sections, tmp_path)
    losses, one_process_norms = reference[shards]
    torch.testing.assert_close(_losses(tmp_path), losses, atol=0, rtol=1e-5)
    if mode == "tp":  # what each rank's norms work on and keep: the whole batch, or (sequence parallel) half of it
        split = 2 if extra.get("sequence_parallel") else 1
        for rank in range(procs):
            norms = json.loads((tmp_path / f"norm_inputs_rank{rank}.json").read_text())
            assert norms.keys() == one_process_norms.keys() and len(norms) == 2 * TINY["model"]["n_layers"] + 1
            for name, seen in norms.items():
                whole = one_process_norms[name]
                batch, seq, dim = whole["shape"]
                assert seen["shape"] == [batch, seq // split, dim] and seen["bytes"] * split == whole["bytes"]
                assert seen["saved"] * split == whole["saved"] > 0  # what autograd keeps of the norm for backward
                assert seen["placement"] == ("S(1)" if split == 2 else "local")
    held = [json.loads((tmp_path / f"state_bytes_rank{r}.json").read_text()) for r in range(procs)]
    n = param_count(tiny_config(run={"micro_batch": PER_RANK}).with_vocab(_vocab(tmp_path)).model).value
    if mode == "ddp":
        predicted = zero_memory(n, 2, 0, optimizer_bytes=8, weight_bytes=4, grad_bytes=4).parts
        assert all(h == {k: int(v) for k, v in predicted.items()} for h in held)  # full replicas
    if mode == "fsdp":
        predicted = zero_memory(n, 2, 3, optimizer_bytes=8, weight_bytes=4, grad_bytes=4).parts
        for part, value in predicted.items():
            assert sum(h[part] for h in held) == 2 * value  # shards add up to Ψ, each rank holds Ψ / N_d


DROPOUT = 0.1


@pytest.mark.parametrize("sequence_parallel", [False, True], ids=["tp", "tp_sp"])
def test_dropout_under_tensor_parallel(tmp_path: Path, sequence_parallel: bool) -> None:
    """Residual and embedding dropout: the whole (B, T, dim) on every rank and the same mask under plain TP (a
    replicated region); T/2 positions per rank and independent masks under sequence parallelism."""
    with_dropout = {"model": {**TINY["model"], "dropout": DROPOUT}, "run": {"micro_batch": PER_RANK}}
    _torchrun(2, with_dropout | {"parallel": {"mode": "tp", "sequence_parallel": sequence_parallel}}, tmp_path, 2)
    trainer = Trainer(tiny_config(**with_dropout), tmp_path / "one", progress=False)
    with dropout_inputs(trainer.train_model) as whole:
        trainer.run(1)  # one process: what its dropout layers receive and keep
    split = 2 if sequence_parallel else 1
    for rank in range(2):
        seen = json.loads((tmp_path / f"dropout_inputs_rank{rank}.json").read_text())
        assert seen.keys() == whole.keys() and len(seen) == 2 * TINY["model"]["n_layers"] + 1
        for name, got in seen.items():
            batch, seq, dim = whole[name]["shape"]
            assert got["shape"] == [batch, seq // split, dim] and got["bytes"] * split == whole[name]["bytes"]
            assert got["saved"] * split == whole[name]["saved"] == batch * seq * dim  # a one-byte mask per element
    ranks = [torch.load(tmp_path / f"dropout_rank{rank}.pt") for rank in range(2)]
    masks = [torch.cat([m.flatten() for m in r["masks"].values()]) for r in ranks]
    n = masks[0].numel()
    assert abs(torch.cat(masks).double().mean() - DROPOUT) < 5 * math.sqrt(DROPOUT * (1 - DROPOUT) / (2 * n))
    if sequence_parallel:  # each rank drops its own positions independently: both drop an element at rate p²
        both = (masks[0] & masks[1]).double().mean()
        assert abs(both - DROPOUT**2) < 5 * math.sqrt(DROPOUT**2 * (1 - DROPOUT**2) / n)
    else:  # the residual stream is replicated: every rank must drop the same elements
        assert torch.equal(masks[0], masks[1])
    for name, tensor in ranks[0]["whole"].items():  # replicated weights (embeddings, norms) stay equal on both ranks
        assert torch.equal(tensor, ranks[1]["whole"][name]), name


@pytest.mark.parametrize("schedule", ["gpipe", "1f1b"])
def test_pipeline_parallel_follows_the_one_process_curve(tmp_path: Path, schedule: str) -> None:
    untied = {"model": {**TINY["model"], "tie_embeddings": False, "n_layers": 3}}  # 3 blocks: a 2 + 1 split
    reference = tmp_path / "one"
    Trainer(tiny_config(**untied), reference, progress=False).run(STEPS)
    sections = untied | {"parallel": {"mode": "pp", "pp_schedule": schedule, "pp_microbatches": 4}}
    _torchrun(2, sections, tmp_path / "pp")
    torch.testing.assert_close(_losses(tmp_path / "pp"), _losses(reference), atol=0, rtol=1e-5)
    torch.testing.assert_close(  # validation runs through the pipeline too
        torch.tensor([r["val_loss"] for r in read_metrics(tmp_path / "pp") if "val_loss" in r]),
        torch.tensor([r["val_loss"] for r in read_metrics(reference) if "val_loss" in r]),
        atol=0, rtol=1e-5,
    )  # fmt: skip


def _vocab(run_dir: Path) -> int:
    return json.loads((run_dir / "config.json").read_text())["model"]["vocab_size"]


def test_sharded_checkpoints_hold_full_tensors_a_single_process_can_read(tmp_path: Path) -> None:
    sections = {"parallel": {"mode": "fsdp"}, "run": {"micro_batch": PER_RANK}}
    _torchrun(2, sections, tmp_path)  # 10 steps, checkpoints gathered to full tensors every 5
    from tfdojo.train.sample import load_run

    model, _, step = load_run(tmp_path)  # an ordinary VariantLM, loaded without any process group
    assert step == STEPS
    saved = torch.load(sorted((tmp_path / "checkpoints").iterdir())[-1], weights_only=False)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, saved["model"][name], atol=0, rtol=0)
