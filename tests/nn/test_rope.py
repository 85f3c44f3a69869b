"""RoPE and its scalings against HF transformers' rope-initialisation functions, and the relative-position property."""

import math

import pytest
import torch
from transformers import LlamaConfig
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from tfdojo.errors import ConfigError
from tfdojo.nn.rope import RopeScaling, RotaryEmbedding, apply_rope

HEAD_DIM, BASE, TRAINED = 32, 10000.0, 256


def hf_config(rope_parameters: dict, max_positions: int = TRAINED) -> LlamaConfig:
    """A tiny Llama config whose only role is to carry head_dim and the rope parameters to HF's functions."""
    params = {"rope_theta": BASE, **rope_parameters}
    return LlamaConfig(
        hidden_size=64, num_attention_heads=2, head_dim=HEAD_DIM, max_position_embeddings=max_positions,
        rope_parameters=params,
    )  # fmt: skip


STATIC_CASES = [
    ({"rope_type": "linear", "factor": 4.0}, RopeScaling("linear", 4.0)),
    (
        {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": TRAINED},
        RopeScaling("yarn", 8.0, TRAINED),
    ),
    (
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": TRAINED, "beta_fast": 16,
         "beta_slow": 2, "mscale": 0.707, "mscale_all_dim": 0.5},
        RopeScaling("yarn", 4.0, TRAINED, beta_fast=16, beta_slow=2, mscale=0.707, mscale_all_dim=0.5),
    ),
    (
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": TRAINED, "attention_factor": 1.3},
        RopeScaling("yarn", 4.0, TRAINED, attention_factor=1.3),
    ),
    (
        {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": TRAINED, "low_freq_factor": 1.0,
         "high_freq_factor": 4.0},
        RopeScaling("llama3", 8.0, TRAINED, low_freq_factor=1.0, high_freq_factor=4.0),
    ),
]  # fmt: skip


@pytest.mark.parametrize(("hf_params", "scaling"), STATIC_CASES, ids=lambda v: getattr(v, "kind", ""))
def test_scaled_frequencies_and_attention_factor_match_hf(hf_params: dict, scaling: RopeScaling) -> None:
    expected_inv, expected_factor = ROPE_INIT_FUNCTIONS[hf_params["rope_type"]](hf_config(hf_params), None)
    ours = RotaryEmbedding(HEAD_DIM, BASE, scaling)
    torch.testing.assert_close(ours.inv_freq, expected_inv)
    assert ours.attention_scaling == pytest.approx(expected_factor, rel=1e-12)
    assert not torch.allclose(ours.inv_freq, RotaryEmbedding(HEAD_DIM, BASE).inv_freq)  # the scaling did something


@pytest.mark.parametrize(
    "hf_params",
    [case[0] for case in STATIC_CASES] + [{"type": "linear", "factor": 2.0}],
    ids=lambda p: p.get("rope_type") or p.get("type"),
)
def test_from_hf_parses_rope_parameters_to_the_same_frequencies(hf_params: dict) -> None:
    """HF dicts (rope_parameters, or a legacy rope_scaling with "type") give HF's numbers."""
    config = hf_config({**hf_params, "rope_type": hf_params.get("rope_type") or hf_params["type"]})
    expected_inv, expected_factor = ROPE_INIT_FUNCTIONS[config.rope_parameters["rope_type"]](config, None)
    ours = RotaryEmbedding(HEAD_DIM, BASE, RopeScaling.from_hf(hf_params, TRAINED))
    torch.testing.assert_close(ours.inv_freq, expected_inv)
    assert ours.attention_scaling == pytest.approx(expected_factor, rel=1e-12)


def test_from_hf_dynamic_uses_max_position_embeddings_and_default_means_none() -> None:
    scaling = RopeScaling.from_hf({"rope_type": "dynamic", "factor": 2.0}, TRAINED)
    assert scaling == RopeScaling("dynamic", 2.0, TRAINED)
    assert RopeScaling.from_hf({"rope_type": "default", "rope_theta": 1e4}, TRAINED) is None
    assert RopeScaling.from_hf(None, TRAINED) is None
    with pytest.raises(ConfigError, match="no 'factor'"):
        RopeScaling.from_hf({"rope_type": "yarn"}, TRAINED)
    with pytest.raises(ConfigError, match="longrope"):
        RopeScaling.from_hf({"rope_type": "longrope", "factor": 2.0}, TRAINED)


def test_llama3_bands_split_as_published() -> None:
    """Short wavelengths untouched, long ones divided by the factor, some channel in the smoothed band between."""
    scaling = RopeScaling("llama3", 8.0, TRAINED)
    plain, scaled = RotaryEmbedding(HEAD_DIM, BASE).inv_freq, RotaryEmbedding(HEAD_DIM, BASE, scaling).inv_freq
    wavelength = 2 * math.pi / plain
    short, long = wavelength < TRAINED / 4.0, wavelength > TRAINED / 1.0
    assert short.any() and long.any() and (~short & ~long).any()
    torch.testing.assert_close(scaled[short], plain[short])
    torch.testing.assert_close(scaled[long], plain[long] / 8.0)


@pytest.mark.parametrize("seq_len", [TRAINED // 2, TRAINED, 3 * TRAINED + 5])
def test_dynamic_ntk_matches_hf_at_the_call_length(seq_len: int) -> None:
    config = hf_config({"rope_type": "dynamic", "factor": 2.0})
    expected, factor = ROPE_INIT_FUNCTIONS["dynamic"](config, None, seq_len=seq_len)
    rope = RotaryEmbedding(HEAD_DIM, BASE, RopeScaling("dynamic", 2.0, TRAINED))
    positions = torch.arange(seq_len).unsqueeze(0)  # (1, T): the call's longest position is seq_len - 1
    torch.testing.assert_close(rope.frequencies(positions), expected)
    assert rope.attention_scaling == factor == 1.0
    if seq_len > TRAINED:
        assert (rope.frequencies(positions)[1:] < RotaryEmbedding(HEAD_DIM, BASE).inv_freq[1:]).all()


@pytest.mark.parametrize(
    "hf_params",
    [
        {"rope_type": "default"},
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": TRAINED},
        {"rope_type": "dynamic", "factor": 2.0},
    ],
    ids=lambda p: p["rope_type"],
)
def test_cos_sin_tables_match_hf_rotary_module(hf_params: dict) -> None:
    """The whole table, attention factor included, as HF's LlamaRotaryEmbedding computes it (beyond L for dynamic)."""
    config = hf_config(hf_params)
    hf = LlamaRotaryEmbedding(config)
    kind = hf_params["rope_type"]
    scaling = None if kind == "default" else RopeScaling(kind, hf_params["factor"], TRAINED)
    ours = RotaryEmbedding(HEAD_DIM, BASE, scaling)
    positions = torch.arange(2 * TRAINED + 3).unsqueeze(0)  # (1, T)
    x = torch.zeros(1, positions.shape[1], 64)
    for got, want in zip(ours(positions, torch.float32), hf(x, positions), strict=True):
        torch.testing.assert_close(got, want)


def test_rope_scores_depend_only_on_relative_position() -> None:
    """q_m · k_n after rotation is the same for every (m, n) with equal m - n (fp64)."""
    torch.manual_seed(0)
    rope = RotaryEmbedding(HEAD_DIM, BASE)
    q, k = torch.randn(HEAD_DIM, dtype=torch.float64), torch.randn(HEAD_DIM, dtype=torch.float64)

    def score(m: int, n: int) -> torch.Tensor:
        cos, sin = rope(torch.tensor([[m, n]]), torch.float64)  # (1, 2, D)
        qm = apply_rope(q.view(1, 1, 1, -1).expand(1, 1, 2, -1), cos, sin)[0, 0, 0]
        kn = apply_rope(k.view(1, 1, 1, -1).expand(1, 1, 2, -1), cos, sin)[0, 0, 1]
        return qm @ kn

    for offset in (0, 3, -7):
        scores = torch.stack([score(m, m - offset) for m in (10, 57, 400)])
        torch.testing.assert_close(scores, scores[0].expand(3), rtol=0, atol=1e-5)
    assert not torch.isclose(score(20, 10), score(20, 13))


def test_invalid_scalings_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="original_max_position_embeddings"):
        RopeScaling("yarn", 4.0)
    with pytest.raises(ConfigError, match="unknown RoPE scaling"):
        RopeScaling("ntk", 4.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="even head_dim"):
        RotaryEmbedding(33)
