"""Our GPT-2 and Llama configs trained by our loop give HF transformers' loss curve, step for step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from tfdojo.models.variants import VariantConfig, VariantLM
from tfdojo.train.config import OptimConfig, ScheduleConfig
from tfdojo.train.optim import make_optimizer, set_lr
from tfdojo.train.parallel.norms import clip_gradients
from tfdojo.train.schedule import lr_at
from tfdojo.train.step import accumulate_gradients, count_targets
from tfdojo.weights.hf import load_hf_model

STEPS = 50
VOCAB = 64


def _gpt2() -> tuple[nn.Module, VariantConfig]:
    hf = GPT2LMHeadModel(
        GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4,
                   resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    )  # fmt: skip
    ours = VariantConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, ffn_hidden=128, max_seq_len=32, positions="learned",
        norm="layernorm", ffn="gelu", bias=True, layout="pre", backend="eager",
    )  # fmt: skip
    return hf, ours


def _llama() -> tuple[nn.Module, VariantConfig]:
    hf = LlamaForCausalLM(
        LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                    rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False)
    )  # fmt: skip
    ours = VariantConfig(
        vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=48, max_seq_len=64,
        norm_eps=1e-6, tie_embeddings=False, backend="eager",
    )  # fmt: skip
    return hf, ours


def _batches(steps: int, seed: int = 0) -> list[list[dict[str, torch.Tensor]]]:
    """Two micro-batches per step of learnable sequences (a noisy repeating pattern), the same for both models."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        start = torch.randint(0, VOCAB, (4, 1), generator=gen)
        ids = (start + torch.arange(17) * 3) % VOCAB  # (4, 17): an arithmetic pattern to learn
        noise = torch.rand(ids.shape, generator=gen) < 0.1
        ids = torch.where(noise, torch.randint(0, VOCAB, ids.shape, generator=gen), ids)
        out.append([{"input_ids": ids[i : i + 2, :-1], "labels": ids[i : i + 2, 1:]} for i in (0, 2)])
    return out


def _curve(model: nn.Module, batches) -> list[float]:
    optim, schedule = OptimConfig(lr=3e-3), ScheduleConfig(warmup_steps=5, max_steps=STEPS)
    optimizer = make_optimizer(model, optim)
    losses = []
    for step, micro in enumerate(batches):
        set_lr(optimizer, lr_at(step, optim.lr, schedule))
        optimizer.zero_grad(set_to_none=True)
        losses.append(accumulate_gradients(model, micro, total_targets=count_targets(micro)))
        clip_gradients(list(model.parameters()), optim.grad_clip)
        optimizer.step()
    return losses


@pytest.mark.parametrize("family", [_gpt2, _llama], ids=["gpt2", "llama"])
def test_fifty_steps_follow_the_hf_loss_curve(family, tmp_path: Path) -> None:
    torch.manual_seed(0)
    hf, config = family()
    hf.save_pretrained(tmp_path)
    ours = VariantLM(config)
    ours.load_state_dict(load_hf_model(tmp_path)[1].state_dict(), strict=True)  # identical starting weights
    batches = _batches(STEPS)
    hf_losses, our_losses = _curve(hf.train(), batches), _curve(ours.train(), batches)
    assert hf_losses[-1] < 0.8 * hf_losses[0]  # the run learns something, so the curves are worth comparing
    torch.testing.assert_close(torch.tensor(our_losses), torch.tensor(hf_losses), atol=0, rtol=1e-5)
