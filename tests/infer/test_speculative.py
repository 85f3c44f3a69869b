"""Speculative decoding: greedy tokens identical to plain decoding (prompt lookup and a draft model), a draft
equal to the target accepted in full, and the rejection rule's output distributed as the target's (chi-square)."""

from __future__ import annotations

import pytest
import torch
from test_generate import ByteTokenizer, tiny_llama
from threads import one_thread  # noqa: F401  (autouse: one thread for tiny models)

from tfdojo.infer.generate import generate
from tfdojo.infer.speculative import DraftModel, PromptLookup, speculative_generate, verify
from tfdojo.models.llama import Llama


def other_tiny_llama() -> Llama:
    """A different random model with the same vocabulary: a draft that is often wrong."""
    torch.manual_seed(1)
    return Llama(tiny_llama().config).eval()


PROMPT = list(b"abcabcabc the cat sat; the cat sat; the cat")


@pytest.mark.parametrize("drafter", ["lookup", "draft-model", "self"])
def test_greedy_speculative_equals_plain_greedy(drafter):
    model = tiny_llama()
    draft = {"lookup": PromptLookup(3), "draft-model": DraftModel(other_tiny_llama()), "self": DraftModel(model)}
    plain = generate(model, ByteTokenizer(), PROMPT, max_new_tokens=40, ignore_eos=True)
    spec = speculative_generate(model, ByteTokenizer(), PROMPT, draft[drafter], k=4, max_new_tokens=40, ignore_eos=True)
    assert spec.token_ids == plain.token_ids
    assert spec.drafted > 0
    if drafter == "self":  # the target drafting for itself is always right: 1 forward per k + 1 tokens
        assert spec.acceptance == 1.0 and spec.target_forwards == 1 + -(-39 // 5)


def test_prompt_lookup_continues_the_latest_match_of_the_longest_suffix():
    lookup = PromptLookup(max_ngram=2)  # a point-mass drafter: the sampling arguments are not used
    assert lookup.propose([1, 2, 3, 9, 2, 3, 7, 5, 2, 3], 2, None, None) == ([7, 5], None)  # latest "2 3"
    assert lookup.propose([4, 5, 6], 3, None, None) == ([], None)  # no earlier match


CHI2_DF4_P001 = 18.47  # chi-square critical value, 4 degrees of freedom, p = 0.001


def chi2(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("point_mass", [False, True], ids=["draft-model", "lookup"])
def test_rejection_rule_preserves_the_target_distribution(point_mass):
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(3, 5, generator=g) * 1.5, -1)  # target at positions 1, 2 (and a bonus)
    q = torch.softmax(torch.randn(2, 5, generator=g) * 1.5, -1)  # a different draft distribution
    first, second = torch.zeros(5), torch.zeros(5)
    for _ in range(8000):
        if point_mass:
            drafts = [3, 1]  # prompt lookup: fixed drafts, q = one-hot
            out = verify(p, None, drafts, g)
        else:
            drafts = [int(torch.multinomial(q[i], 1, generator=g)) for i in range(2)]
            out = verify(p, q, drafts, g)
        first[out[0]] += 1
        if len(out) > 1:
            second[out[1]] += 1
    assert chi2(first, p[0]) < CHI2_DF4_P001
    assert chi2(second, p[1]) < CHI2_DF4_P001  # p[1] does not depend on the first token here
    assert second.sum() > 800  # enough second tokens were accepted to test
