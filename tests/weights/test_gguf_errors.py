"""Every way a GGUF file can be wrong, through tfdojo.load: the named error, the file, and what to do."""

import os

import numpy as np
import pytest
from gguf_testfiles import llama_gguf_from_hf, tiny_hf_llama

import tfdojo
from tfdojo.errors import CheckpointError, MissingTensorError, UnsupportedModelError


@pytest.fixture(scope="module")
def tiny_hf():
    return tiny_hf_llama(hidden=16, n_heads=2, n_kv_heads=1)


def damaged_copy(source, target, *, keep_bytes=None, at=None, patch=b""):
    """A copy of ``source`` cut to ``keep_bytes``, or with ``patch`` written over it at offset ``at``."""
    data = bytearray(source.read_bytes()[:keep_bytes])
    if at is not None:
        data[at : at + len(patch)] = patch
    target.write_bytes(bytes(data))
    return target


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage",
    [
        {"keep_bytes": "half"},  # truncated mid-tensor-data
        {"keep_bytes": 1_000_000},  # truncated inside the metadata (the vocabulary)
        {"at": 0, "patch": b"XXXX"},  # the magic overwritten
    ],
    ids=["truncated-half", "truncated-header", "bad-magic"],
)
def test_damaged_real_file_raises_checkpoint_error(smollm2_gguf_path, tmp_path, damage):
    if damage.get("keep_bytes") == "half":
        damage = {"keep_bytes": smollm2_gguf_path.stat().st_size // 2}
    path = damaged_copy(smollm2_gguf_path, tmp_path / "smollm2.gguf", **damage)
    with pytest.raises(CheckpointError, match="truncated or corrupt") as info:
        tfdojo.load(str(path))
    assert str(path) in str(info.value) and "re-install" in str(info.value)


@pytest.mark.parametrize(
    "content", [os.urandom(4096), b"GGUF" + os.urandom(4096), b""], ids=["random", "magic-then-random", "empty"]
)
def test_non_gguf_bytes_raise_checkpoint_error(tmp_path, content):
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        tfdojo.load(str(path))


def test_missing_tensor_is_named(tmp_path, tiny_hf):
    path = llama_gguf_from_hf(tmp_path / "m.gguf", tiny_hf, drop=["blk.1.ffn_up.weight"])
    with pytest.raises(MissingTensorError, match=r"lacks tensor 'blk\.1\.ffn_up\.weight'"):
        tfdojo.load(str(path))


def test_missing_output_head_means_tied(tmp_path, tiny_hf):
    """llama.cpp drops output.weight when the head is tied; an untied model's file keeps it."""
    untied = tiny_hf_llama(tied=False, hidden=16, n_heads=2, n_kv_heads=1)
    lm = tfdojo.load(str(llama_gguf_from_hf(tmp_path / "m.gguf", untied, drop=["output.weight"])))
    assert lm.config.tie_embeddings


def test_wrong_shape_is_named(tmp_path, tiny_hf):
    path = llama_gguf_from_hf(
        tmp_path / "m.gguf", tiny_hf, drop=["blk.0.attn_v.weight"], extra={"blk.0.attn_v.weight": np.zeros((5, 16))}
    )
    with pytest.raises(MissingTensorError, match=r"'blk\.0\.attn_v\.weight' has shape \(5, 16\)"):
        tfdojo.load(str(path))


def test_unsupported_architecture(tmp_path, tiny_hf):
    with pytest.raises(UnsupportedModelError, match="'falcon' model.*llama"):
        tfdojo.load(str(llama_gguf_from_hf(tmp_path / "m.gguf", tiny_hf, arch="falcon")))


def test_unknown_extra_tensor_is_refused(tmp_path, tiny_hf):
    path = llama_gguf_from_hf(tmp_path / "m.gguf", tiny_hf, extra={"rope_freqs.weight": np.ones(4, np.float32)})
    with pytest.raises(UnsupportedModelError, match="rope_freqs.weight"):
        tfdojo.load(str(path))


def test_missing_metadata_and_unsupported_rope_variants():
    from tfdojo.weights.gguf_llama import llama_config_from_gguf

    base = {
        "general.architecture": "llama",
        "llama.block_count": 2,
        "llama.context_length": 32,
        "llama.embedding_length": 16,
        "llama.feed_forward_length": 24,
        "llama.attention.head_count": 2,
        "llama.attention.layer_norm_rms_epsilon": 1e-5,
        "llama.vocab_size": 10,
    }
    assert llama_config_from_gguf(base, ["output.weight"]).tie_embeddings is False
    with pytest.raises(CheckpointError, match="lacks the metadata key llama.block_count"):
        llama_config_from_gguf({k: v for k, v in base.items() if k != "llama.block_count"}, [], "x.gguf")
    with pytest.raises(UnsupportedModelError, match="RoPE scaling 'yarn'"):
        llama_config_from_gguf({**base, "llama.rope.scaling.type": "yarn"}, [])
    with pytest.raises(UnsupportedModelError, match="partial RoPE"):
        llama_config_from_gguf({**base, "llama.rope.dimension_count": 4}, [])
