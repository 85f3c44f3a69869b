"""Checkpoints: kill -9 mid-run and --resume gives a bit-identical loss curve; bad checkpoints get clear errors."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from conftest import TINY, tiny_config
from tfdojo.errors import CheckpointError, ConfigError
from tfdojo.train import Trainer
from tfdojo.train.checkpoint import checkpoint_paths
from tfdojo.train.metrics import read_metrics

STEPS = 20
CLI = [sys.executable, "-c", "from tfdojo.cli import app; app()"]


def _toml(sections: dict) -> str:
    lines = []
    for name, fields in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # what we wrote must be valid TOML
    return text


def _curve(run_dir: Path) -> list[tuple[int, float, float, float]]:
    return [(r["step"], r["loss"], r["grad_norm"], r["lr"]) for r in read_metrics(run_dir)]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("clean")
    Trainer(tiny_config(), run, progress=False).run(STEPS)
    return run


def test_kill_9_then_resume_is_bit_identical(clean_run: Path, tmp_path: Path) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(_toml(TINY))
    run = tmp_path / "run"
    kill_after = random.Random(os.getpid()).randint(6, 14)  # a random step, usually between checkpoints
    proc = subprocess.Popen([*CLI, "train", str(config), "--out", str(run), "--max-steps", str(STEPS), "--no-progress"])
    deadline = time.monotonic() + 600
    while not any(r["step"] >= kill_after for r in read_metrics(run)):
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(
        [*CLI, "train", str(config), "--out", str(run), "--max-steps", str(STEPS), "--resume", "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert _curve(run) == _curve(clean_run)  # every float equal, not just close
    assert [r["step"] for r in read_metrics(run)] == list(range(1, STEPS + 1))


def test_resume_without_a_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoints"):
        Trainer(tiny_config(), tmp_path, resume=True, progress=False)


def test_a_second_run_into_the_same_folder_is_refused(clean_run: Path) -> None:
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(tiny_config(), clean_run, progress=False)


def test_a_damaged_checkpoint_is_named_not_skipped(clean_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (run / name).write_bytes((clean_run / name).read_bytes())
    (run / "checkpoints").mkdir()
    newest = checkpoint_paths(clean_run)[-1]
    (run / "checkpoints" / newest.name).write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # truncated
    with pytest.raises(CheckpointError, match="damaged"):
        Trainer(tiny_config(), run, resume=True, progress=False)


def test_resuming_with_a_different_config_names_the_difference(clean_run: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[optim\] lr"):
        Trainer(tiny_config(optim={"lr": 1e-2}), clean_run, resume=True, progress=False)


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"optim": {"lr": "fast"}}, "lr = 'fast'"),
        ({"data": {"tokeniser": "char"}}, "unknown fields"),
        ({"model": {"n_heads": 5}}, "divisible"),
        ({"schedule": {"warmup_steps": 100, "max_steps": 10}}, "warmup_steps"),
        ({"diagnostics": {"policy": "panic"}}, "policy"),
        ({"parallel": {"mode": "ddp", "sequence_parallel": True}}, "sequence_parallel needs mode 'tp'"),
    ],
)
def test_bad_configs_are_refused_by_name(sections: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(**sections)


def test_the_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[optim]\nlr = -1\n")
    result = subprocess.run([*CLI, "train", str(config), "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.startswith("error:") and "[optim]" in result.stderr and "Traceback" not in result.stderr


def test_sample_continues_a_prompt_from_the_newest_checkpoint(clean_run: Path) -> None:
    command = [*CLI, "sample", str(clean_run), "--prompt", "KING:", "-n", "40", "--seed", "1"]
    first, second = (subprocess.run(command, capture_output=True, text=True, timeout=300) for _ in range(2))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("KING:") and len(first.stdout.strip()) > len("KING:")
    assert first.stdout == second.stdout  # seeded sampling is reproducible
    assert f"at step {STEPS}" in first.stderr


def test_sample_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "sample", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "not a training run" in result.stderr
