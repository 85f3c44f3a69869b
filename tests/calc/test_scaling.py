"""Scaling laws against the Chinchilla paper's numbers and against a brute-force search of its loss fit."""

import math

import numpy as np
import pytest

from tfdojo.calc.scaling import (
    HOFFMANN,
    chinchilla,
    chinchilla_tokens,
    compute_optimal_fit,
    predicted_loss,
    training_compute,
)
from tfdojo.errors import ConfigError

GOPHER_FLOPS = 5.76e23  # Hoffmann et al. (2022), Table 3: the Gopher / Chinchilla budget


def test_chinchilla_training_compute() -> None:
    # 70B parameters on 1.4T tokens: 6 · 70e9 · 1.4e12 = 5.88e23, the paper's ~5.8e23 (Gopher's 5.76e23)
    assert training_compute(70e9, 1.4e12).value == pytest.approx(5.88e23)
    assert training_compute(70e9, 1.4e12).value == pytest.approx(GOPHER_FLOPS, rel=0.03)


def test_twenty_tokens_per_parameter_rule() -> None:
    r = chinchilla(GOPHER_FLOPS)
    assert r.value == pytest.approx(math.sqrt(GOPHER_FLOPS / 120))
    assert r.value == pytest.approx(70e9, rel=0.02)  # Chinchilla's own size
    assert r.parts["tokens"] == pytest.approx(1.4e12, rel=0.02)
    assert 6 * r.parts["params"] * r.parts["tokens"] == pytest.approx(GOPHER_FLOPS)
    assert chinchilla_tokens(70e9).value == pytest.approx(1.4e12)


def test_fit_allocation_is_the_minimum_on_the_iso_flop_curve() -> None:
    r = compute_optimal_fit(GOPHER_FLOPS)
    # brute force: loss over a log grid of N with D = C / 6N, in float64
    n = np.logspace(9, 12, 20001)
    d = GOPHER_FLOPS / (6 * n)
    loss = HOFFMANN.E + HOFFMANN.A / n**HOFFMANN.alpha + HOFFMANN.B / d**HOFFMANN.beta
    assert r.value == pytest.approx(n[np.argmin(loss)], rel=1e-3)
    assert r.parts["loss"] == pytest.approx(loss.min(), rel=1e-9)
    # published ballpark: approach 3 reports ~40B for this budget, the 20-token rule ~70B
    assert 25e9 < r.value < 70e9
    assert 6 * r.value * r.parts["tokens"] == pytest.approx(GOPHER_FLOPS)


def test_predicted_loss_terms() -> None:
    r = predicted_loss(70e9, 1.4e12)
    assert r.parts["finite model"] == pytest.approx(406.4 / 70e9**0.34)
    assert r.parts["finite data"] == pytest.approx(410.7 / 1.4e12**0.28)
    assert r.value == pytest.approx(sum(r.parts.values()))
    assert r.value < predicted_loss(280e9, 300e9).value  # Chinchilla beats Gopher under the fit


def test_every_result_shows_its_working() -> None:
    for r in (chinchilla(1e21), compute_optimal_fit(1e21), predicted_loss(1e9, 2e10), training_compute(1e9, 1e10)):
        assert r.steps and r.assumptions


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_bad_budgets_raise(bad: float) -> None:
    with pytest.raises(ConfigError, match="positive"):
        chinchilla(bad)
    with pytest.raises(ConfigError):
        compute_optimal_fit(bad)
    with pytest.raises(ConfigError):
        predicted_loss(1e9, bad)
