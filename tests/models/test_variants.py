"""VariantLM: every choice of VariantConfig against something we did not write (HF models, written-out formulas)."""

from __future__ import annotations

import math

import pytest
import torch
from hf_parity import save_and_load
from tiny_hf import DECODER_FIELDS, perturbed, tiny_hf_decoder
from transformers import GPT2Config as HFGPT2Config
from transformers import GPT2LMHeadModel, LlamaForCausalLM, MistralConfig, MistralForCausalLM
from transformers import LlamaConfig as HFLlamaConfig
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

from tfdojo.calc import param_count
from tfdojo.errors import ConfigError
from tfdojo.infer.cache import StaticKVCache
from tfdojo.models.variants import SparsePattern, VariantConfig, VariantLM
from tfdojo.nn.rope import RopeScaling

TOL = {"atol": 1e-5, "rtol": 1e-4}
LLAMA_SHAPES = dict(
    vocab_size=DECODER_FIELDS["vocab_size"], dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=48, max_seq_len=64
)


def variant_from(family_model, config: VariantConfig) -> VariantLM:
    """A VariantLM holding a loaded family model's weights (the parameter names are the same)."""
    model = VariantLM(config).eval()
    model.load_state_dict(family_model.state_dict(), strict=True)
    return model


def ids(batch: int = 2, length: int = 12, vocab: int = LLAMA_SHAPES["vocab_size"], seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_learned_layernorm_gelu_pre_ln_is_gpt2(tmp_path):
    torch.manual_seed(0)
    hf = perturbed(GPT2LMHeadModel(HFGPT2Config(vocab_size=96, n_positions=32, n_embd=32, n_layer=2, n_head=4)))
    config = VariantConfig(
        vocab_size=96, dim=32, n_layers=2, n_heads=4, ffn_hidden=128, max_seq_len=32, positions="learned",
        norm="layernorm", ffn="gelu", bias=True, layout="pre", backend="eager",
    )  # fmt: skip
    ours = variant_from(save_and_load(hf, tmp_path), config)
    x = ids(vocab=96)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x).logits, **TOL)


@pytest.mark.parametrize("scaling", [None, RopeScaling("yarn", 4.0, 16)], ids=["rope", "rope-yarn"])
def test_rope_rmsnorm_swiglu_gqa_is_llama(tmp_path, scaling):
    extra = {} if scaling is None else {"rope_scaling": {"rope_type": "yarn", "factor": 4.0,
                                                         "original_max_position_embeddings": 16}}  # fmt: skip
    hf = tiny_hf_decoder(LlamaForCausalLM, HFLlamaConfig, rope_theta=5000.0, tie_word_embeddings=False, **extra)
    config = VariantConfig(**LLAMA_SHAPES, rope_theta=5000.0, rope_scaling=scaling, tie_embeddings=False, norm_eps=1e-6)
    ours = variant_from(save_and_load(hf, tmp_path), config)
    x = ids(length=40)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x).logits, **TOL)


@pytest.mark.parametrize("backend", ["eager", "sdpa", "tiled"])
def test_sliding_window_is_mistral_on_every_dense_backend(tmp_path, backend):
    hf = tiny_hf_decoder(MistralForCausalLM, MistralConfig, sliding_window=5, tie_word_embeddings=False)
    config = VariantConfig(**LLAMA_SHAPES, window=5, backend=backend, tie_embeddings=False, norm_eps=1e-6)
    ours = variant_from(save_and_load(hf, tmp_path), config)
    x = ids(length=16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x).logits, **TOL)


def written_out_alibi_layer(model: VariantLM, x: torch.Tensor) -> torch.Tensor:
    """One pre-LN block with ALiBi, scores + slope·(j − i) and a causal mask, written out in fp64."""
    block = model.layers[0]
    c = model.config
    h = model.embed.weight[x].double()  # (B, T, d)
    a = block.norm1.double()(h)
    b, t, _ = h.shape
    q = (a @ block.attn.q_proj.weight.double().T).view(b, t, c.n_heads, -1).transpose(1, 2)  # (B, H, T, D)
    k = (a @ block.attn.k_proj.weight.double().T).view(b, t, c.n_heads, -1).transpose(1, 2)
    v = (a @ block.attn.v_proj.weight.double().T).view(b, t, c.n_heads, -1).transpose(1, 2)
    distance = torch.arange(t)[None, :] - torch.arange(t)[:, None]  # (T, T): j − i
    slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / c.n_heads) for h in range(c.n_heads)], dtype=torch.float64)
    scores = q @ k.transpose(-1, -2) / math.sqrt(c.head_dim) + slopes[:, None, None] * distance  # (B, H, T, T)
    scores = scores.masked_fill(distance > 0, float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1) @ block.attn.o_proj.weight.double().T
    h = h + y
    return h + block.ffn.double()(block.norm2.double()(h))


def test_alibi_matches_the_written_out_formula():
    torch.manual_seed(0)
    config = VariantConfig(vocab_size=50, dim=32, n_layers=1, n_heads=4, positions="alibi", backend="eager")
    model = VariantLM(config).eval()
    x = ids(vocab=50, length=10)
    with torch.no_grad():
        model.double()
        hidden = model.norm(model.layers[0](model.embed(x), causal=True, mask=None))
        torch.testing.assert_close(hidden, model.norm(written_out_alibi_layer(model, x)))


@pytest.mark.parametrize("layout", ["post", "sandwich"])
def test_post_and_sandwich_layouts_follow_their_formulas(layout):
    torch.manual_seed(0)
    config = VariantConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, norm="layernorm", layout=layout,
                           positions="none", backend="eager")  # fmt: skip
    model = VariantLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    block = model.layers[0]
    x = torch.randn(2, 7, 16)

    def attn(z):
        return block.attn(z, causal=True)

    with torch.no_grad():
        if layout == "post":
            h = block.norm1(x + attn(x))
            expected = block.norm2(h + block.ffn(h))
        else:
            h = x + block.post_norm1(attn(block.norm1(x)))
            expected = h + block.post_norm2(block.ffn(block.norm2(h)))
        torch.testing.assert_close(block(x, causal=True), expected)


CAUSAL_VARIANTS = {
    "eager": {},
    "sdpa-mqa": {"n_kv_heads": 1},
    "tiled-alibi": {"backend": "tiled", "positions": "alibi"},
    "sliding-window": {"window": 4},
    "block-sparse": {"backend": "block_sparse", "sparse": SparsePattern(block=4, local=1, stride=2, global_blocks=1)},
    "linear-elu": {"backend": "linear"},
    "linear-performer": {"backend": "linear", "feature_map": "performer"},
    "learned-postln": {"positions": "learned", "layout": "post", "norm": "layernorm", "ffn": "gelu"},
    "sinusoidal-geglu": {"positions": "sinusoidal", "ffn": "geglu"},
    "nope-relu2": {"positions": "none", "ffn": "relu2"},
    "moe": {"n_experts": 4, "top_k": 2},
}


@pytest.mark.parametrize("name", CAUSAL_VARIANTS)
def test_the_future_does_not_leak(name):
    torch.manual_seed(0)
    model = VariantLM(VariantConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, **CAUSAL_VARIANTS[name])).eval()
    x = ids(batch=1, length=16, vocab=50)
    changed = x.clone()
    changed[0, 10] = (x[0, 10] + 1) % 50
    with torch.no_grad():
        before, after = model(x), model(changed)
    torch.testing.assert_close(before[:, :10], after[:, :10], atol=1e-5, rtol=1e-5)
    assert (before[:, 10:] - after[:, 10:]).abs().amax() > 1e-4


@pytest.mark.parametrize("name", ["eager", "sdpa-mqa", "tiled-alibi", "sliding-window", "learned-postln", "moe"])
def test_cached_greedy_equals_recomputing(name):
    torch.manual_seed(0)
    c = VariantConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, max_seq_len=64, **CAUSAL_VARIANTS[name])
    model = VariantLM(c).eval()
    prompt = ids(batch=1, length=5, vocab=50)
    cache = StaticKVCache(c.n_layers, 1, c.kv_heads, 32, c.head_dim)
    recomputed, cached = prompt, prompt
    with torch.no_grad():
        logits = model(prompt, cache=cache)
        for _ in range(12):
            recomputed = torch.cat([recomputed, model(recomputed)[:, -1:].argmax(-1)], dim=1)
            cached = torch.cat([cached, logits[:, -1:].argmax(-1)], dim=1)
            logits = model(cached[:, -1:], cache=cache)
    assert cached.tolist() == recomputed.tolist()


def test_moe_aux_loss_is_hfs_load_balancing_loss():
    torch.manual_seed(0)
    c = VariantConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, n_experts=4, top_k=2)
    model = VariantLM(c).eval()
    with torch.no_grad():
        model(ids(vocab=50))
    per_layer = tuple(layer.ffn.router_logits for layer in model.layers)  # L × (N, E)
    expected = load_balancing_loss_func(per_layer, num_experts=4, top_k=2)  # HF Mixtral's, over every layer
    assert float(expected) > 1.0  # E · Σ f_e P_e is 1 when perfectly balanced: a real, unbalanced value
    torch.testing.assert_close(model.aux.load_balancing, expected)
    logits = torch.cat(per_layer)  # (L·N, E)
    torch.testing.assert_close(model.aux.router_z, torch.logsumexp(logits, -1).pow(2).mean())
    dense = VariantLM(VariantConfig(vocab_size=50, dim=32, n_layers=1, n_heads=4))
    assert float(dense.aux.load_balancing) == 0.0


def test_linformer_encoder_runs_bidirectionally_and_refuses_a_cache():
    c = VariantConfig(vocab_size=50, dim=32, n_layers=1, n_heads=4, causal=False, backend="linformer", linformer_k=8,
                      max_seq_len=16)  # fmt: skip
    model = VariantLM(c).eval()
    x = ids(batch=1, length=16, vocab=50)
    changed = x.clone()
    changed[0, -1] = (x[0, -1] + 1) % 50
    with torch.no_grad():
        assert (model(x)[:, 0] - model(changed)[:, 0]).abs().amax() > 1e-5  # the first token sees the last
    with pytest.raises(ConfigError, match="cache"):
        model(x, cache=StaticKVCache(1, 1, 4, 16, 8))


@pytest.mark.parametrize("name", ["eager", "moe", "learned-postln", "linear-performer"])
def test_param_count_matches_the_instantiated_model(name):
    c = VariantConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, **CAUSAL_VARIANTS[name])
    assert param_count(c).value == sum(p.numel() for p in VariantLM(c).parameters())


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"n_heads": 4, "n_kv_heads": 3}, "multiple"),
        ({"backend": "warp"}, "unknown attention backend"),
        ({"positions": "spiral"}, "unknown positions"),
        ({"window": 0}, "window"),
        ({"n_experts": 2, "top_k": 3}, "top_k"),
        ({"backend": "linformer"}, "causal=False"),
        ({"positions": "alibi", "backend": "linear"}, "ALiBi"),
        ({"positions": "learned", "rope_scaling": RopeScaling("linear", 2.0, 64)}, "rope_scaling"),
    ],
)
def test_bad_configs_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        VariantConfig(**fields)
