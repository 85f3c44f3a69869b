"""The real SmolLM2-135M GGUF through our loader, against HF transformers loading the same file."""

import pytest
import torch

from tfdojo.weights.gguf import unpermute_rope_rows

pytestmark = pytest.mark.slow


@torch.no_grad()
def test_logits_match_hf(smollm2, smollm2_hf_model):
    ids = torch.randint(0, smollm2.config.vocab_size, (1, 64), generator=torch.Generator().manual_seed(0))
    ours = smollm2.model(ids)
    theirs = smollm2_hf_model(ids).logits
    assert ours.shape == theirs.shape == (1, 64, 49152)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)  # the same fp32 operations in the same order


@torch.no_grad()
def test_greedy_tokens_match_hf_generate(smollm2, smollm2_hf_model):
    """64 greedy tokens identical to HF's ``generate(do_sample=False)``.

    A plain greedy loop re-runs the whole sequence each step and appends the argmax of the last position. For a
    causal model, the logits at position p depend on tokens 0..p only, so one forward over prompt + HF's tokens gives
    every step's last-position logits at once: the loop reproduces HF's tokens iff each of those argmaxes equals HF's
    next token. The causality this relies on is checked too: the prompt's logits do not change when tokens follow.
    """
    messages = [{"role": "user", "content": "Write a short poem about the sea."}]
    prompt = smollm2.tokenizer.encode(smollm2.tokenizer.apply_chat_template(messages))
    hf = smollm2_hf_model.generate(torch.tensor([prompt]), max_new_tokens=64, do_sample=False, top_p=None, top_k=None)
    theirs = hf[0, len(prompt) :].tolist()
    assert len(theirs) == 64  # a full-length answer, not an early stop

    logits = smollm2.model(hf)  # (1, P + 64, V)
    ours = logits[0, len(prompt) - 1 : -1].argmax(-1).tolist()  # the greedy choice after each prefix
    assert ours == theirs
    prompt_only = smollm2.model(torch.tensor([prompt]))  # (1, P, V)
    # not bit-equal: a longer input changes the matmul blocking; measured 4.05e-5 on logits up to 38 in size
    torch.testing.assert_close(logits[:, : len(prompt)], prompt_only, rtol=0, atol=5e-5)


def test_dequantized_weights_match_hf(smollm2, smollm2_hf_model, smollm2_reader):
    """Every ggml type in the file (Q8_0 embeddings, Q4_1 matrices, F32 norms), Q/K rows un-permuted like HF."""
    assert {t.tensor_type.name for t in smollm2_reader.tensors} == {"Q8_0", "Q4_1", "F32"}
    theirs = smollm2_hf_model.state_dict()
    ours = smollm2.model
    pairs = {
        "model.embed_tokens.weight": ours.embed.weight,
        "lm_head.weight": ours.lm_head.weight,
        "model.norm.weight": ours.norm.weight,
    }
    for i in (0, 17, 29):
        layer, prefix = ours.layers[i], f"model.layers.{i}."
        pairs |= {
            prefix + "self_attn.q_proj.weight": layer.attn.q_proj.weight,
            prefix + "self_attn.k_proj.weight": layer.attn.k_proj.weight,
            prefix + "self_attn.v_proj.weight": layer.attn.v_proj.weight,
            prefix + "self_attn.o_proj.weight": layer.attn.o_proj.weight,
            prefix + "mlp.gate_proj.weight": layer.ffn.gate.weight,
            prefix + "mlp.up_proj.weight": layer.ffn.up.weight,
            prefix + "mlp.down_proj.weight": layer.ffn.down.weight,
            prefix + "input_layernorm.weight": layer.norm1.weight,
            prefix + "post_attention_layernorm.weight": layer.norm2.weight,
        }
    for name, weight in pairs.items():
        torch.testing.assert_close(weight, theirs[name], rtol=0, atol=0, msg=name)


def test_loaded_model_is_frozen_eval_and_tied(smollm2):
    model = smollm2.model
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert model.lm_head.weight is model.embed.weight
    assert model.num_parameters() == 134_515_008  # SmolLM2-135M with tied embeddings (HF model card: 135M)


def llama_cpp_permute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """llama.cpp's converter, written as an index map: file row h·D + 2i + j holds original row h·D + j·D/2 + i."""
    out, _ = w.shape
    d = out // n_heads
    rows = [h * d + j * (d // 2) + i for h in range(n_heads) for i in range(d // 2) for j in range(2)]
    return w[rows]


def interleaved_rope(x: torch.Tensor, pos: torch.Tensor, base: float) -> torch.Tensor:
    """llama.cpp's RoPE on (T, H, D): channels (2i, 2i+1) as one complex number, times e^{i·pos·θ_i}."""
    d = x.shape[-1]
    theta = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (D/2,)
    rot = torch.polar(torch.ones(len(pos), d // 2, dtype=torch.float64), pos[:, None] * theta)  # (T, D/2)
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], d // 2, 2))  # (T, H, D/2)
    return torch.view_as_real(z * rot[:, None]).reshape(x.shape)  # (T, H, D)


def test_unpermute_inverts_llama_cpp_permutation():
    w = torch.randn(3 * 8, 5, dtype=torch.float64)
    torch.testing.assert_close(unpermute_rope_rows(llama_cpp_permute(w, 3), 3), w, rtol=0, atol=0)


def test_unpermuted_weights_give_the_same_attention_scores_under_rotate_half_rope():
    """Scores q_m·k_n of llama.cpp (file weights, interleaved RoPE) equal ours (un-permuted weights, rotate-half)."""
    from tfdojo.nn.rope import RotaryEmbedding, apply_rope

    torch.manual_seed(0)
    n_heads, d, dim, t, base = 2, 8, 6, 5, 100.0
    w_q_file = torch.randn(n_heads * d, dim, dtype=torch.float64)
    w_k_file = torch.randn(n_heads * d, dim, dtype=torch.float64)
    x = torch.randn(t, dim, dtype=torch.float64)
    pos = torch.arange(t, dtype=torch.float64)

    q_file = interleaved_rope((x @ w_q_file.T).view(t, n_heads, d), pos, base)  # (T, H, D)
    k_file = interleaved_rope((x @ w_k_file.T).view(t, n_heads, d), pos, base)  # (T, H, D)
    scores_file = torch.einsum("thd,shd->hts", q_file, k_file)

    cos, sin = RotaryEmbedding(d, base)(pos[None], torch.float64)  # (1, T, D)
    q = (x @ unpermute_rope_rows(w_q_file, n_heads).T).view(1, t, n_heads, d).transpose(1, 2)  # (1, H, T, D)
    k = (x @ unpermute_rope_rows(w_k_file, n_heads).T).view(1, t, n_heads, d).transpose(1, 2)  # (1, H, T, D)
    scores_ours = apply_rope(q, cos, sin)[0] @ apply_rope(k, cos, sin)[0].transpose(-1, -2)  # (H, T, T)
    torch.testing.assert_close(scores_ours, scores_file)
    scores_unfixed = torch.einsum("thd,shd->hts", (x @ w_q_file.T).view(t, n_heads, d), k_file)
    assert not torch.allclose(scores_unfixed, scores_file)  # the rotation matters at these positions
