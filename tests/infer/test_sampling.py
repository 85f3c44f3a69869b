"""Sampling filters against plain per-row reference code, and sampled frequencies against the distribution."""

from __future__ import annotations

import math

import pytest
import torch

from tfdojo.errors import ConfigError
from tfdojo.infer import gemv_kernel
from tfdojo.infer.sampling import SamplingConfig, filter_logits, sample, top_k_filter, top_p_filter


def reference_top_k(row: list[float], k: int) -> set[int]:
    """Indices of the k largest values, by sorting the row."""
    order = sorted(range(len(row)), key=lambda i: row[i], reverse=True)
    return set(order[:k])


def reference_top_p(row: list[float], p: float) -> set[int]:
    """Walk tokens by falling probability, keeping each until the kept mass reaches p."""
    exps = [math.exp(x - max(row)) for x in row]
    probs = [e / sum(exps) for e in exps]
    kept, mass = set(), 0.0
    for i in sorted(range(len(row)), key=lambda i: probs[i], reverse=True):
        kept.add(i)
        mass += probs[i]
        if mass >= p:
            break
    return kept


def kept(filtered: torch.Tensor) -> list[set[int]]:
    return [set(torch.nonzero(torch.isfinite(row)).flatten().tolist()) for row in filtered]


@pytest.fixture
def logits() -> torch.Tensor:
    return torch.randn(16, 50, generator=torch.Generator().manual_seed(0)) * 3


@pytest.mark.parametrize("k", [1, 5, 49, 50, 80])
def test_top_k_keeps_the_k_largest(logits, k):
    filtered = top_k_filter(logits, k)
    assert kept(filtered) == [reference_top_k(row, k) for row in logits.tolist()]
    finite = torch.isfinite(filtered)
    assert torch.equal(filtered[finite], logits[finite])  # survivors are untouched


@pytest.mark.parametrize("p", [0.05, 0.3, 0.9, 0.999])
def test_top_p_keeps_the_smallest_prefix_reaching_p(logits, p):
    filtered = top_p_filter(logits, p)
    assert kept(filtered) == [reference_top_p(row, p) for row in logits.tolist()]


def test_filters_compose_temperature_then_top_k_then_top_p(logits):
    config = SamplingConfig(temperature=0.7, top_k=10, top_p=0.8)
    filtered = filter_logits(logits, config)
    for row, got in zip(logits.tolist(), kept(filtered), strict=True):
        scaled = [x / 0.7 for x in row]
        top = reference_top_k(scaled, 10)
        masked = [x if i in top else -math.inf for i, x in enumerate(scaled)]
        assert got == reference_top_p(masked, 0.8)


def test_greedy_is_argmax_and_ignores_the_generator(logits):
    assert torch.equal(sample(logits, SamplingConfig()), logits.argmax(-1))
    assert torch.equal(sample(logits, SamplingConfig(), torch.Generator().manual_seed(3)), logits.argmax(-1))


def test_sampled_frequencies_match_the_filtered_distribution():
    row = torch.randn(12, generator=torch.Generator().manual_seed(1)) * 2
    config = SamplingConfig(temperature=0.8, top_k=8, top_p=0.9)
    n = 40_000
    draws = sample(row.expand(n, -1), config, torch.Generator().manual_seed(2))  # n independent draws in one call
    counts = torch.bincount(draws, minlength=12).double()

    scaled = (row / 0.8).tolist()
    allowed = reference_top_p([x if i in reference_top_k(scaled, 8) else -math.inf for i, x in enumerate(scaled)], 0.9)
    expected = torch.zeros(12, dtype=torch.float64)
    mass = sum(math.exp(scaled[i]) for i in allowed)
    for i in allowed:
        expected[i] = math.exp(scaled[i]) / mass

    assert counts[expected == 0].sum() == 0  # filtered tokens are never drawn
    # Pearson's chi-square over the allowed tokens; 30 is beyond the 0.999 quantile for up to 8 degrees of freedom.
    chi2 = ((counts - n * expected) ** 2 / (n * expected)).nan_to_num()[expected > 0].sum()
    assert len(allowed) >= 3
    assert chi2 < 30


def test_same_seed_same_draws_different_seed_different_draws(logits):
    config = SamplingConfig(temperature=1.0)
    a = sample(logits, config, torch.Generator().manual_seed(7))
    b = sample(logits, config, torch.Generator().manual_seed(7))
    c = sample(logits, config, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize(
    "kwargs", [{"temperature": -0.1}, {"temperature": 1.0, "top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}]
)
def test_invalid_settings_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        SamplingConfig(**kwargs)


def test_greedy_of_one_bf16_row_follows_torch_argmax_rules_through_our_c_loop():
    """First index on a tie, a NaN wins, -inf rows: as torch.argmax (the C loop runs once our kernels are loaded)."""
    if gemv_kernel.library() is None:
        pytest.skip("our AVX2 kernels are not built on this machine")
    rows = [torch.randn(1, 49152, generator=torch.Generator().manual_seed(s)).to(torch.bfloat16) for s in range(3)]
    tie = torch.zeros(1, 100, dtype=torch.bfloat16)
    tie[0, [7, 40]] = 3.0
    nan = torch.zeros(1, 100, dtype=torch.bfloat16)
    nan[0, [5, 60]] = float("nan")
    nan[0, 2] = 9.0
    minus_inf = torch.full((1, 100), float("-inf"), dtype=torch.bfloat16)
    for logits in [*rows, tie, nan, minus_inf]:
        assert torch.equal(sample(logits, SamplingConfig()), logits.float().argmax(-1)), logits
    assert gemv_kernel.argmax_row(rows[0][0]) == int(rows[0].float().argmax())  # the C loop, not a fallback
