"""Lab experiments that train tiny models on the spot: each quick claim holds, and a broken variant fails it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfdojo.lab import isoflop, length_extrapolation, linear_vs_softmax
from tfdojo.train.corpus import archive_path


@pytest.fixture(scope="module", autouse=True)
def _shakespeare() -> None:
    archive_path()  # a clear ConfigError naming the fetch command when the plays are missing


def test_length_extrapolation_alibi_holds_and_a_mislabelled_arm_fails(tmp_path: Path) -> None:
    good = length_extrapolation.run(tmp_path, quick=True)
    assert good.holds, good.numbers["checks"]
    rise = good.numbers["rise_at_4x"]
    assert rise["alibi"] < rise["rope"] and rise["alibi"] < rise["sinusoidal"]
    assert Path(good.figures[0]).stat().st_size > 1000
    broken = length_extrapolation.run(tmp_path, quick=True, arms={"alibi": "sinusoidal"})  # "ALiBi" that is not
    assert not broken.numbers["checks"]["ALiBi keeps its loss at 4x (rise < 0.05 nats)"]
    assert not broken.holds


def test_linear_attention_recalls_worse_as_pairs_grow_and_a_softmax_linear_arm_fails(tmp_path: Path) -> None:
    good = linear_vs_softmax.run(tmp_path, quick=True)
    assert good.holds, good.numbers["checks"]
    recall = good.numbers["rows"]["linear"]["recall"]
    assert recall["2"] > recall["16"] + 0.05
    broken = linear_vs_softmax.run(tmp_path, quick=True, backends={"softmax": "sdpa", "linear": "sdpa"})  # "linear"
    checks = broken.numbers["checks"]  # that is softmax: it keeps every pair, so nothing falls and there is no gap
    assert not checks["linear's recall falls by > 0.05 from 2 to 16 pairs"]
    assert not checks["the gap to softmax at 16 pairs is > 0.05 and over twice the gap at 2"]
    assert not broken.holds


def test_isoflop_has_an_interior_optimum_and_sizes_past_it_fail(tmp_path: Path) -> None:
    finding = isoflop.run(tmp_path, quick=True)
    assert finding.holds, finding.numbers["checks"]
    (sweep,) = finding.numbers["sweeps"]
    assert min(r["params"] for r in sweep["runs"]) < sweep["n_opt"] < max(r["params"] for r in sweep["runs"])
    too_big = isoflop.run(tmp_path, quick=True, dims=(12, 16, 24))  # every size past the optimum: no interior minimum
    assert not too_big.holds


def test_isoflop_fit_finds_a_known_vertex_and_rejects_a_monotone_curve() -> None:
    xs = [3.0, 3.5, 4.0, 4.5, 5.0]
    fit = isoflop.fit_optimum(xs, [2.0 + (x - 4.2) ** 2 for x in xs])
    assert fit["interior"] and abs(fit["log10_n_opt"] - 4.2) < 1e-9
    assert not isoflop.fit_optimum(xs, [3.0 - 0.1 * x for x in xs])["interior"]
