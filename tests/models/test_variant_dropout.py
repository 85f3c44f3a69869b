"""VariantConfig.dropout: where VariantLM drops (embeddings, every residual branch), that eval and inference do not,
and that the default model is unchanged."""

from __future__ import annotations

import math

import pytest
import torch

from tfdojo.errors import ConfigError
from tfdojo.models.variants import VariantConfig, VariantLM
from tfdojo.nn.dropout import Dropout

P = 0.1
SHAPES = dict(vocab_size=64, dim=32, n_layers=2, n_heads=4, ffn_hidden=64, max_seq_len=64)


def pair(layout: str = "pre") -> tuple[VariantLM, VariantLM]:
    """A model with dropout and one without, holding the same weights."""
    torch.manual_seed(0)
    dropping = VariantLM(VariantConfig(**SHAPES, layout=layout, dropout=P))
    plain = VariantLM(VariantConfig(**SHAPES, layout=layout))
    plain.load_state_dict(dropping.state_dict())  # the same keys: dropout holds no weights
    return dropping, plain


def test_eval_and_inference_mode_give_the_logits_of_the_model_without_dropout() -> None:
    dropping, plain = pair()
    ids = torch.randint(0, 64, (2, 16))
    expected = plain.eval()(ids)
    torch.testing.assert_close(dropping.eval()(ids), expected, atol=0, rtol=0)
    with torch.inference_mode():
        torch.testing.assert_close(dropping.train()(ids), expected, atol=0, rtol=0)
    assert not torch.allclose(dropping.train()(ids), expected)  # training does drop
    for module in dropping.modules():  # embedding and residual dropout off: the attention probabilities still drop
        if isinstance(module, Dropout):
            module.eval()
    assert not torch.allclose(dropping(ids), expected)
    torch.testing.assert_close(plain.train()(ids), expected, atol=0, rtol=0)  # p = 0: nothing to switch off
    assert not any(isinstance(m, torch.nn.Dropout) for m in plain.modules())


@pytest.mark.parametrize("layout", ["pre", "post", "sandwich"])
def test_training_drops_the_embeddings_and_each_residual_branch_at_rate_p(layout: str) -> None:
    dropping, _ = pair(layout)
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def keep(name: str, x: torch.Tensor, y: torch.Tensor) -> None:
        seen[name] = (x, y)

    for name, module in dropping.named_modules():
        if isinstance(module, Dropout):
            module.register_forward_hook(lambda _, i, o, name=name: keep(name, i[0], o))
    dropping.train()(torch.randint(0, 64, (16, 64)))
    assert sorted(seen) == ["drop", "layers.0.drop1", "layers.0.drop2", "layers.1.drop1", "layers.1.drop2"]
    for name, (x, y) in seen.items():
        zeroed = (y == 0) & (x != 0)
        assert abs(zeroed.double().mean().item() - P) < 5 * math.sqrt(P * (1 - P) / x.numel()), name
        torch.testing.assert_close(y[~zeroed], x[~zeroed] / (1 - P), atol=0, rtol=1e-6)  # expectation kept


@pytest.mark.parametrize("p", [1.0, 1.5, -0.1])
def test_dropout_must_be_a_probability_below_one(p: float) -> None:
    with pytest.raises(ConfigError, match=r"dropout is a probability in \[0, 1\)"):
        VariantConfig(dropout=p)


def test_backends_that_cannot_drop_attention_probabilities_are_refused() -> None:
    with pytest.raises(ConfigError, match="backend 'tiled' cannot"):
        VariantConfig(backend="tiled", dropout=P)
    VariantConfig(backend="tiled")  # without dropout it is fine
