"""Lab experiments on synthetic inputs and tiny models: each claim holds, and a broken variant makes it fail."""

from __future__ import annotations

from pathlib import Path

from tfdojo.calc.kv_cache import kv_cache_bytes
from tfdojo.lab import attention_cost, kv_cache_heads, moe_routing, sqrt_d


def test_sqrt_d_scaling_holds_and_wrong_scale_fails(tmp_path: Path) -> None:
    good = sqrt_d.run(tmp_path, quick=True)
    assert good.holds, good.numbers["checks"]
    assert Path(good.figures[0]).stat().st_size > 1000
    wrong = sqrt_d.run(tmp_path, quick=True, scale=lambda d: 1.0 / d)  # a classic slip: 1/d instead of 1/√d
    assert not wrong.holds
    assert not wrong.numbers["checks"]["scaled variance stays ~1"]


def test_kv_cache_heads_matches_calc_and_a_wrong_calc_fails(tmp_path: Path) -> None:
    good = kv_cache_heads.run(tmp_path, quick=True)
    assert good.holds, good.numbers["checks"]
    assert [r["kv_heads"] for r in good.numbers["rows"]] == [16, 4, 2, 1]

    def keys_only(config, **kwargs):  # forgets the values: half the true size
        return kv_cache_bytes(config, **kwargs).value / 2

    assert not kv_cache_heads.run(tmp_path, quick=True, calc=keys_only).holds


def test_moe_balancing_loss_spreads_load_and_without_it_fails(tmp_path: Path) -> None:
    good = moe_routing.run(tmp_path, quick=True)
    assert good.holds, good.numbers["checks"]
    unbalanced = moe_routing.run(tmp_path, quick=True, balance=0.0)  # "with the loss" arm silently switched off
    assert not unbalanced.holds


def test_attention_cost_growth_exponents(tmp_path: Path) -> None:
    finding = attention_cost.run(tmp_path, quick=True)
    assert finding.holds, finding.numbers["checks"]
    assert abs(finding.numbers["growth_exponent"]["eager"]["flops"] - 2.0) < 0.05
