"""Published presets built on the meta device have exactly the parameter counts their sources state."""

import pytest

from tfdojo.errors import UnknownModelError
from tfdojo.models.presets import PRESETS, build_preset, get_preset

# Counts of the released checkpoints (Hugging Face ``num_parameters()``), which the model cards and papers round.
PUBLISHED = {
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-2-70b": 68_976_648_192,
    "llama-3-8b": 8_030_261_248,
    "llama-3-70b": 70_553_706_496,
    "smollm2-135m": 134_515_008,
    "smollm2-360m": 361_821_120,
    "smollm2-1.7b": 1_711_376_384,
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
    "bert-base": 109_482_240,
}


def _count(name: str) -> int:
    return sum(p.numel() for p in build_preset(name).parameters())  # parameters() yields a tied weight once


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_meta_build_matches_published_count(name: str) -> None:
    assert _count(name) == PUBLISHED[name]
    assert get_preset(name).published_params == PUBLISHED[name]


def test_gpt3_is_175b() -> None:
    # Brown et al. (2020), Table 2.1, quote 175.0B for n_layers=96, d_model=12288, n_heads=96, n_ctx=2048
    assert _count("gpt-3-175b") == pytest.approx(175.0e9, rel=5e-3)


def test_meta_build_allocates_nothing() -> None:
    assert all(p.is_meta for p in build_preset("llama-2-70b").parameters())


def test_every_preset_has_a_source() -> None:
    assert all(p.source for p in PRESETS.values())


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(UnknownModelError, match="llama-2-70b"):
        get_preset("llama2-70b")
