"""Hidden tests for top-k / top-p sampling: tfdojo.infer.sampling is the reference."""

import math

import torch

from tfdojo.infer.sampling import SamplingConfig, filter_logits, top_k_filter, top_p_filter

NEG = float("-inf")


def _kept(filtered: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(filtered)


def test_top_k_matches_reference(sub) -> None:
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(0))
    for k in (1, 3, 17, 50, 80):
        torch.testing.assert_close(sub.top_k_filter(logits, k), top_k_filter(logits, k))


def test_top_k_keeps_ties_with_kth(sub) -> None:
    logits = torch.tensor([[1.0, 2.0, 2.0, 0.0, 3.0]])
    expected = torch.tensor([[NEG, 2.0, 2.0, NEG, 3.0]])
    torch.testing.assert_close(sub.top_k_filter(logits, 2), expected)


def test_top_p_hand_example(sub) -> None:
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.3], [0.1, 0.6, 0.3]]))
    # p = 0.75: row 0 keeps 0.5 and 0.3 (0.5 < 0.75 before the second); row 1 keeps 0.6 and 0.3.
    kept = _kept(sub.top_p_filter(logits, 0.75))
    assert kept.tolist() == [[True, False, True], [False, True, True]], kept
    assert _kept(sub.top_p_filter(logits, 0.4)).sum(-1).tolist() == [1, 1]  # the top token alone
    assert _kept(sub.top_p_filter(logits, 0.95)).all()
    kept_values = sub.top_p_filter(logits, 0.75)[_kept(sub.top_p_filter(logits, 0.75))]
    torch.testing.assert_close(kept_values, logits[kept])  # kept logits are unchanged


def test_top_p_matches_reference(sub) -> None:
    logits = torch.randn(8, 64, generator=torch.Generator().manual_seed(1)) * 3
    for p in (0.05, 0.3, 0.9, 0.999, 1.0):
        torch.testing.assert_close(sub.top_p_filter(logits, p), top_p_filter(logits, p))


def test_top_p_always_keeps_the_top_token(sub) -> None:
    logits = torch.tensor([[10.0, 0.0, -1.0, 0.5]])
    out = sub.top_p_filter(logits, 1e-6)
    assert _kept(out).tolist() == [[True, False, False, False]]


def test_greedy_is_argmax(sub) -> None:
    logits = torch.randn(5, 30, generator=torch.Generator().manual_seed(2))
    out = sub.sample_next(logits, temperature=0.0, top_k=3, top_p=0.5)
    assert out.dtype == torch.long and out.shape == (5,)
    assert torch.equal(out, logits.argmax(-1))


def _frequencies(sub, logits_row: torch.Tensor, **kw: object) -> torch.Tensor:
    n = 40_000
    draws = sub.sample_next(logits_row.expand(n, -1), generator=torch.Generator().manual_seed(3), **kw)
    assert draws.shape == (n,) and draws.dtype == torch.long
    return torch.bincount(draws, minlength=logits_row.shape[-1]).double() / n


def test_sampling_distribution_temperature_then_filters(sub) -> None:
    # Top-p = 0.7 keeps 2 tokens at temperature 1, 1 token at temperature 0.5 (the top one holds 0.74) and 3 of
    # the top-4 at temperature 3 (flatter): filtering before the temperature would keep 2 in every case.
    logits = torch.tensor([[2.0, 1.2, 1.0, 0.0, -1.0, -3.0]])
    for temperature, top_k, top_p in ((1.0, None, 0.7), (0.5, None, 0.7), (3.0, 4, 0.7), (2.0, 3, None)):
        config = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p)
        expected = torch.softmax(filter_logits(logits, config), dim=-1)[0].double()
        freq = _frequencies(sub, logits, temperature=temperature, top_k=top_k, top_p=top_p)
        assert torch.all(freq[expected == 0] == 0), (temperature, top_k, top_p, freq)
        tol = 4 * torch.sqrt(expected * (1 - expected) / 40_000) + 1e-3
        assert torch.all((freq - expected).abs() <= tol), (temperature, top_k, top_p, freq, expected)


def test_sampling_uses_the_generator(sub) -> None:
    logits = torch.zeros(64, 10)
    a = sub.sample_next(logits, temperature=1.0, generator=torch.Generator().manual_seed(7))
    b = sub.sample_next(logits, temperature=1.0, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert not math.isclose(a.double().std().item(), 0.0)
