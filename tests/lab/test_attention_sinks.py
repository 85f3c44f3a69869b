"""attention-sinks (quick) against independent computations: HF transformers' attention maps and loss on the same
GGUF, the closed-form uniform share, and a sinks cache large enough never to evict (it must equal full attention)."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from tfdojo.lab import attention_sinks
from tfdojo.lab.probe import smollm, text_ids

pytestmark = pytest.mark.slow


def test_sink_shares_and_perplexities_match_independent_computations(tmp_path: Path, smollm2_hf_model) -> None:
    finding = attention_sinks.run(tmp_path, quick=True)
    assert finding.holds, finding.numbers["checks"]
    n = finding.numbers
    lm = smollm()
    ids = text_ids(lm.tokenizer, n["tokens"], offset=2000)  # the experiment's text
    previous = smollm2_hf_model.config._attn_implementation
    smollm2_hf_model.set_attn_implementation("eager")  # the one HF path that returns attention weights
    try:
        with torch.no_grad():
            hf = smollm2_hf_model(ids, labels=ids, output_attentions=True)
            hf_maps = smollm2_hf_model(ids[:, :64], output_attentions=True).attentions  # L × (1, H, 64, 64)
    finally:
        smollm2_hf_model.set_attn_implementation(previous)
    assert n["perplexity"]["full"] == pytest.approx(math.exp(hf.loss.item()), rel=1e-3)
    hf_share = torch.stack([a[0, :, 8:, 0].mean(-1) for a in hf_maps])  # (L, H)
    torch.testing.assert_close(torch.tensor(n["first_token_share_per_head"]), hf_share, atol=2e-3, rtol=0)
    # uniform attention over keys 0..i gives the first key 1/(i+1); queries 8..63 average (H_64 - H_8) / 56
    uniform = sum(Fraction(1, i) for i in range(9, 65)) / 56
    assert n["uniform_share"] == pytest.approx(float(uniform), rel=1e-6)  # computed in fp32 there
    # a cache holding every token never evicts: streaming through it must give full attention's perplexity
    never_evicts = attention_sinks.streamed_perplexity(lm.model, ids, sinks=4, window=n["tokens"], chunk=8)
    assert never_evicts == pytest.approx(n["perplexity"]["full"], rel=1e-4)
