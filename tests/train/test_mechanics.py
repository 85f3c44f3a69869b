"""Accumulation, activation checkpointing, the schedule and bf16 autocast, each against an independent check."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tfdojo.calc.memory import activation_bytes
from tfdojo.models.variants import VariantConfig, VariantLM
from tfdojo.train.config import ScheduleConfig
from tfdojo.train.init import init_weights
from tfdojo.train.packing import IGNORE
from tfdojo.train.parallel.parallelize import activation_checkpointing
from tfdojo.train.schedule import lr_at
from tfdojo.train.step import accumulate_gradients, count_targets

CONFIG = VariantConfig(vocab_size=64, dim=32, n_layers=3, n_heads=4, n_kv_heads=2, ffn_hidden=64, max_seq_len=64)


def _model(config: VariantConfig = CONFIG) -> VariantLM:
    torch.manual_seed(0)
    return init_weights(VariantLM(config), config.n_layers)


def _batch(rows: int, length: int = 24, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 64, (rows, length + 1), generator=gen)
    labels = ids[:, 1:].clone()
    labels[torch.rand(labels.shape, generator=gen) < 0.2] = IGNORE  # uneven ignored targets per micro-batch
    return {"input_ids": ids[:, :-1], "labels": labels}


def _grads(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_accumulating_micro_batches_gives_the_big_batch_gradient() -> None:
    big = _batch(8)
    model = _model()
    loss_big = torch.nn.functional.cross_entropy(
        model(big["input_ids"]).flatten(0, 1), big["labels"].flatten(), ignore_index=IGNORE
    )  # the oracle: one batch, torch's own mean over the targets that count
    loss_big.backward()
    expected = _grads(model)
    model.zero_grad()
    micro = [{k: v[i : i + 2] for k, v in big.items()} for i in range(0, 8, 2)]  # 4 micro-batches of 2 rows
    loss = accumulate_gradients(model, micro, total_targets=count_targets(micro))
    assert loss == pytest.approx(float(loss_big.detach()), rel=1e-6)
    for name, grad in _grads(model).items():
        torch.testing.assert_close(grad, expected[name], atol=1e-7, rtol=1e-5, msg=name)


def _saved_bytes(model: nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd keeps for backward (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() not in params:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        accumulate_gradients(model, [batch], total_targets=count_targets([batch]))
    return sum(storages.values())


def test_activation_checkpointing_gives_equal_gradients_and_keeps_less() -> None:
    config = VariantConfig(**{**vars(CONFIG), "n_layers": 4, "n_kv_heads": None})
    batch = _batch(4, length=48)
    plain, checkpointed = _model(config), activation_checkpointing(_model(config))
    kept_plain, kept_checkpointed = _saved_bytes(plain, batch), _saved_bytes(checkpointed, batch)
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, atol=0, rtol=0, msg=name)  # recomputation is exact
    assert kept_checkpointed < 0.5 * kept_plain
    predicted_saving = (
        activation_bytes(config, 48, 4, dtype="float32", fused_attention=True).value
        - activation_bytes(config, 48, 4, dtype="float32", fused_attention=True, checkpointing=True).value
    )
    # the calculator's saving (block activations dropped, block inputs kept) against the measured one
    assert kept_plain - kept_checkpointed == pytest.approx(predicted_saving, rel=0.05)


def test_checkpointed_state_dict_keeps_plain_names() -> None:
    model = activation_checkpointing(_model())
    assert set(model.state_dict()) == set(_model().state_dict())


def test_warmup_then_cosine_to_the_floor() -> None:
    s = ScheduleConfig(warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert [lr_at(i, 1.0, s) for i in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_at(60, 1.0, s) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(110, 1.0, s) == pytest.approx(0.1)
    assert lr_at(500, 1.0, s) == pytest.approx(0.1)  # past the schedule: stays at the floor


def test_bf16_autocast_tracks_fp32_and_keeps_fp32_gradients() -> None:
    batch = _batch(4)
    fp32, bf16 = _model(), _model()
    loss32 = accumulate_gradients(fp32, [batch], total_targets=count_targets([batch]))
    loss16 = accumulate_gradients(bf16, [batch], total_targets=count_targets([batch]), autocast="bf16")
    assert loss16 == pytest.approx(loss32, rel=2e-2)  # bf16 keeps 8 bits of mantissa: ~0.4 % per product
    for p in bf16.parameters():
        assert p.grad.dtype == torch.float32  # master weights and their gradients stay fp32
    cosine = torch.nn.functional.cosine_similarity(
        torch.cat([p.grad.flatten() for p in fp32.parameters()]),
        torch.cat([p.grad.flatten() for p in bf16.parameters()]),
        dim=0,
    )
    assert cosine > 0.99


def test_init_starts_at_the_uniform_loss() -> None:
    batch = _batch(8)
    loss = accumulate_gradients(_model(), [batch], total_targets=count_targets([batch]))
    assert loss == pytest.approx(math.log(64), rel=0.02)  # small logits: the model starts near uniform


def test_a_checkpointed_pipeline_stage_holding_every_block_is_the_model() -> None:
    from tfdojo.train.parallel.pipeline import StageModel

    model = _model(VariantConfig(**{**vars(CONFIG), "tie_embeddings": False}))
    stage = activation_checkpointing(StageModel(model, 0, CONFIG.n_layers, is_first=True, is_last=True))
    ids = _batch(2)["input_ids"]
    documents = torch.tensor([[0] * 10 + [1] * 14, [2] * 24])  # (B, T): a packed row and a whole one
    torch.testing.assert_close(stage(ids, documents), model(ids, document_ids=documents), atol=0, rtol=0)
