"""Small GGUF files written here: every ggml type we can quantize reads back within its error bound, and a tiny
HF Llama written in llama.cpp's layout loads through tfdojo.load with HF's logits."""

import gguf
import numpy as np
import pytest
import torch
from gguf_testfiles import llama_gguf_from_hf, tiny_hf_llama, write_gguf

import tfdojo
from tfdojo.weights.gguf import dequantize, open_gguf

Q = gguf.GGMLQuantizationType


def block_bound(x: np.ndarray, qtype) -> np.ndarray:
    """Largest error the format allows per element: one quantization step of the element's 32-wide block."""
    blocks = x.reshape(x.shape[0], -1, 32)  # (rows, blocks, 32)
    amax = np.abs(blocks).max(-1, keepdims=True)
    step = {
        Q.Q8_0: amax / 127,  # symmetric, 8 bits
        Q.Q4_0: amax / 8,  # symmetric, 4 bits
        Q.Q5_0: amax / 16,
        Q.Q4_1: (blocks.max(-1, keepdims=True) - blocks.min(-1, keepdims=True)) / 15,  # min + scale, 4 bits
        Q.Q5_1: (blocks.max(-1, keepdims=True) - blocks.min(-1, keepdims=True)) / 31,
        Q.F16: np.abs(blocks) * 2.0**-10,
        Q.BF16: np.abs(blocks) * 2.0**-7,
    }[qtype]
    return np.broadcast_to(step, blocks.shape).reshape(x.shape) * 1.0001 + 1e-7


@pytest.mark.parametrize("qtype", [Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1])
def test_each_type_reads_back_within_its_bound(tmp_path, qtype):
    """A (6, 96) matrix: ggml stores its dims as [96, 6]; we must hand back (6, 96) with rows intact."""
    x = np.random.default_rng(0).standard_normal((6, 96)).astype(np.float32)
    x[2] *= 50  # rows of very different scale: a row mix-up would blow the bound
    path = write_gguf(tmp_path / "t.gguf", "llama", {}, {"w": (x, qtype), "v": (x[0], Q.F32)})
    tensors = {t.name: t for t in open_gguf(path).tensors}
    assert list(tensors["w"].shape) == [96, 6]
    got = dequantize(tensors["w"])
    assert got.dtype == torch.float32 and got.shape == (6, 96)
    assert (np.abs(got.numpy() - x) <= block_bound(x, qtype)).all()
    assert torch.equal(dequantize(tensors["v"]), torch.from_numpy(x[0]))


@pytest.mark.parametrize("tied", [True, False])
def test_tiny_llama_gguf_matches_hf(tmp_path, tied):
    hf = tiny_hf_llama(tied=tied)
    lm = tfdojo.load(str(llama_gguf_from_hf(tmp_path / "tiny.gguf", hf)))
    c = lm.config
    assert (c.n_layers, c.n_heads, c.n_kv_heads, c.dim, c.ffn_hidden, c.vocab_size) == (2, 4, 2, 32, 48, 258)
    assert (c.rope_theta, c.norm_eps, c.max_seq_len, c.tie_embeddings) == (500.0, pytest.approx(1e-6), 64, tied)
    assert (lm.model.lm_head.weight is lm.model.embed.weight) is tied
    ids = torch.randint(0, 258, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(lm.model(ids), hf(ids).logits, rtol=1e-5, atol=1e-5)
    assert lm.tokenizer.encode("hé t<|im_end|>") == [*"hé".encode(), 256, 257]  # bytes, one merge, special
    assert lm.tokenizer.eos_token_ids == {257}


def test_tiny_llama_gguf_in_bfloat16(tmp_path):
    hf = tiny_hf_llama(tied=True)
    lm = tfdojo.load(str(llama_gguf_from_hf(tmp_path / "tiny.gguf", hf)), dtype=torch.bfloat16)
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    ids = torch.randint(0, 258, (1, 24), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(lm.model(ids).float(), hf(ids).logits, rtol=0.05, atol=0.05)
