"""Loss-spike diagnostics: a corrupted batch and a one-step LR x100 spike are caught, survived and reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import tiny_config
from tfdojo.train import Faults, Trainer
from tfdojo.train.diagnostics import robust_z

STEPS = 40
DIAG = {"min_history": 10, "window": 30, "z_threshold": 6.0}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    run = tmp_path_factory.mktemp("clean")
    return Trainer(tiny_config(diagnostics={"policy": "skip", **DIAG}), run, progress=False).run(STEPS)


def test_a_clean_run_raises_no_alarm(clean) -> None:
    assert clean.events == ()


def test_a_corrupted_batch_is_skipped_before_it_does_harm(clean, tmp_path: Path) -> None:
    config = tiny_config(diagnostics={"policy": "skip", **DIAG})
    summary = Trainer(config, tmp_path, progress=False, faults=Faults(corrupt_batches={24})).run(STEPS)
    (event,) = summary.events
    assert (event.step, event.action, event.micro_batches) == (25, "skip", [24])  # step 25 = index 24
    assert event.loss_z > 6
    assert summary.final_loss == pytest.approx(clean.final_loss, rel=0.02)
    report = json.loads((tmp_path / "diagnostics.json").read_text())
    assert report[0]["step"] == 25 and report[0]["layers"]  # names the layers, largest jump first


def test_without_the_detector_the_corrupted_batch_goes_through(tmp_path: Path) -> None:
    config = tiny_config(diagnostics={"policy": "off"})
    summary = Trainer(config, tmp_path, progress=False, faults=Faults(corrupt_batches={24})).run(STEPS)
    assert summary.events == ()


def test_an_lr_spike_is_rolled_back_with_a_cut(clean, tmp_path: Path) -> None:
    config = tiny_config(diagnostics={"policy": "rollback", **DIAG})
    faults = Faults(lr_spikes={22: 100.0})
    trainer = Trainer(config, tmp_path, progress=False, faults=faults)
    summary = trainer.run(STEPS)
    rollbacks = [e for e in summary.events if e.action == "rollback"]
    assert rollbacks and 23 <= rollbacks[0].step <= 25  # the damaged weights show at the next step or two
    assert trainer.lr_scale == pytest.approx(0.5 ** len(rollbacks))
    assert summary.final_loss == pytest.approx(clean.final_loss, rel=0.02)
    ratio_jumps = [layer.get("ratio_jump", 0) for layer in rollbacks[0].layers]
    assert max(ratio_jumps) > 10  # the report points at layers whose update-to-weight ratio jumped


def test_robust_z_ignores_one_outlier_in_the_history() -> None:
    history = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 50.0]
    assert robust_z(1.2, history) < 6 < robust_z(3.0, history)
