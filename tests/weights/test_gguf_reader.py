"""Our GGUF parser and torch dequantizers against the `gguf` package's own reader and numpy dequantizers."""

import struct

import gguf
import numpy as np
import pytest
import torch

from tfdojo.weights.gguf import dequantize
from tfdojo.weights.gguf_metadata import gguf_metadata
from tfdojo.weights.gguf_reader import GGUFFile

Q = gguf.GGMLQuantizationType


def assert_same_file(ours: GGUFFile, theirs: gguf.GGUFReader) -> None:
    """Same metadata (keys, values and Python types) and same tensors (name, type, shape, bytes)."""
    reference = gguf_metadata(theirs)
    assert list(ours.metadata) == list(reference)
    for key, value in reference.items():
        assert ours.metadata[key] == value and type(ours.metadata[key]) is type(value), key
    assert len(ours.tensors) == len(theirs.tensors)
    for mine, ref in zip(ours.tensors, theirs.tensors, strict=True):
        assert (mine.name, mine.tensor_type, mine.shape) == (ref.name, ref.tensor_type, tuple(ref.shape.tolist()))
        assert mine.data.dtype == ref.data.dtype and mine.data.shape == ref.data.shape, mine.name
        assert np.array_equal(mine.data.view(np.uint8), ref.data.view(np.uint8)), mine.name
    assert ours.data_offset == theirs.data_offset


def test_every_value_type_and_tensor_type_reads_like_gguf(tmp_path):
    path = tmp_path / "all.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_uint8("u8", 200)
    writer.add_int8("i8", -100)
    writer.add_uint16("u16", 60000)
    writer.add_int16("i16", -30000)
    writer.add_uint32("u32", 4_000_000_000)
    writer.add_int32("i32", -2_000_000_000)
    writer.add_uint64("u64", 2**63 + 5)
    writer.add_int64("i64", -(2**62))
    writer.add_float32("f32", 1e-5)  # not exact in fp32: both readers must give the same rounded value
    writer.add_float64("f64", 0.1)
    writer.add_bool("yes", True)
    writer.add_string("text", "naïve 東京 🙂")
    writer.add_array("ints", [3, -1, 7])
    writer.add_array("floats", [0.5, -2.25])
    writer.add_array("flags", [True, False, True])
    writer.add_array("words", ["", "Ġthe", "<|im_end|>", "κόσμε"])
    writer.add_array("empty", [])
    writer.add_uint32("general.alignment", 64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    writer.add_tensor("f32", x)
    writer.add_tensor("f16", x.astype(np.float16))
    for qtype in (Q.Q8_0, Q.Q4_1, Q.Q4_0, Q.BF16):
        writer.add_tensor(qtype.name.lower(), gguf.quants.quantize(x, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    ours, theirs = GGUFFile(path), gguf.GGUFReader(path)
    assert_same_file(ours, theirs)
    assert ours.metadata["words"] == ["", "Ġthe", "<|im_end|>", "κόσμε"] and ours.data_offset % 64 == 0


@pytest.mark.slow
def test_bundled_smollm2_reads_like_gguf(smollm2_gguf_path, smollm2_reader):
    """The real file: 49,152 tokens, their types and merges, and 272 tensors in Q8_0, Q4_1 and F32."""
    ours = GGUFFile(smollm2_gguf_path)
    assert_same_file(ours, smollm2_reader)
    assert len(ours.metadata["tokenizer.ggml.tokens"]) == 49152


@pytest.mark.parametrize("qtype", [Q.Q8_0, Q.Q4_1])
def test_torch_dequantizers_equal_gguf_numpy_bit_for_bit(tmp_path, qtype):
    """Random blocks, including scales of very different size: our torch code gives gguf's numpy values exactly."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((8, 256)) * np.logspace(-4, 3, 8)[:, None]).astype(np.float32)
    writer = gguf.GGUFWriter(tmp_path / "q.gguf", "llama")
    writer.add_tensor("w", gguf.quants.quantize(x, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (tensor,) = GGUFFile(tmp_path / "q.gguf").tensors
    expected = gguf.quants.dequantize(tensor.data, qtype)
    got = dequantize(tensor)
    assert got.shape == (8, 256) and got.dtype == torch.float32
    assert torch.equal(got, torch.from_numpy(expected))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"GGUF" + (7).to_bytes(4, "little") + bytes(16), "version 7"),
        (b"GGUF" + (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + (1).to_bytes(8, "little"), "unpack"),
        (b"GGML" + bytes(20), "magic"),
    ],
    ids=["unknown-version", "missing-key-value", "bad-magic"],
)
def test_malformed_headers_raise_parse_errors(tmp_path, content, message):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises((ValueError, struct.error), match=message):
        GGUFFile(path)
