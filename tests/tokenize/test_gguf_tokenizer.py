"""Tokenizer.from_gguf on the bundled SmolLM2 file, against HF transformers' tokenizer built from the same GGUF."""

import pytest

from tfdojo.errors import TokenizerError
from tfdojo.tokenize.tokenizer import Tokenizer
from tfdojo.weights.gguf_metadata import gguf_metadata

TEXTS = [
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "naïve café, Ærøskøbing, Straße, ñandú",
    "東京タワーは高い。北京欢迎你！서울",
    "emoji 😀🚀👩‍💻 and flags 🇫🇷",
    "def f(x):\n\tif x:\n\t\treturn  x ** 2    # squares\n\n\n",
    "   leading spaces and trailing   ",
    "numbers 3.14159, 1,000,000 and 2024-11-23 and 0x1F",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|><repo_name>tfdojo<file_sep>x.py",
    "it's they're we've I'm you'll he'd",
    "\r\nwindows\r\nlines\u00a0nbsp",
    "",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another, in 日本語?"},
    ],
    [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ],
]


@pytest.fixture(scope="module")
def metadata(smollm2_reader):
    return gguf_metadata(smollm2_reader)


@pytest.fixture(scope="module")
def ours(metadata) -> Tokenizer:
    return Tokenizer.from_gguf(metadata)


@pytest.mark.parametrize("text", TEXTS)
def test_ids_match_hf(ours, smollm2_hf_tokenizer, text):
    expected = smollm2_hf_tokenizer.encode(text, add_special_tokens=False)
    assert ours.encode(text) == expected
    assert ours.encode(text, add_special_tokens=True) == smollm2_hf_tokenizer.encode(text)


@pytest.mark.parametrize("text", TEXTS)
def test_decode_round_trips_and_matches_hf(ours, smollm2_hf_tokenizer, text):
    ids = ours.encode(text)
    assert ours.decode(ids) == text
    assert ours.decode(ids) == smollm2_hf_tokenizer.decode(ids)
    assert ours.decode(ids, skip_special_tokens=True) == smollm2_hf_tokenizer.decode(ids, skip_special_tokens=True)


def test_digits_split_one_by_one(ours, smollm2_hf_tokenizer):
    """SmolLM2 was trained with every digit its own word; the ids of a long number say so."""
    ids = ours.encode("1234567")
    assert len(ids) == 7
    assert ids == smollm2_hf_tokenizer.encode("1234567", add_special_tokens=False)


@pytest.mark.parametrize("add_generation_prompt", [True, False])
@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_chat_template_matches_hf(ours, smollm2_hf_tokenizer, messages, add_generation_prompt):
    expected = smollm2_hf_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    assert ours.apply_chat_template(messages, add_generation_prompt=add_generation_prompt) == expected


def test_special_ids_come_from_metadata(ours, smollm2_hf_tokenizer):
    assert ours.vocab_size == len(smollm2_hf_tokenizer) == 49152
    assert ours.bos_token_id == smollm2_hf_tokenizer.bos_token_id
    assert ours.pad_token_id == smollm2_hf_tokenizer.pad_token_id
    assert smollm2_hf_tokenizer.convert_tokens_to_ids("<|im_end|>") in ours.eos_token_ids
    assert smollm2_hf_tokenizer.eos_token_id in ours.eos_token_ids


def test_end_of_turn_token_is_read_from_the_template(metadata):
    """With a different declared EOS, <|im_end|> still joins eos_token_ids because the template closes turns with it."""
    tok = Tokenizer.from_gguf({**metadata, "tokenizer.ggml.eos_token_id": 0})
    assert tok.eos_token_ids == {0, tok.backend.token_to_id("<|im_end|>")}
    no_template = {**metadata, "tokenizer.ggml.eos_token_id": 0, "tokenizer.chat_template": None}
    assert Tokenizer.from_gguf(no_template).eos_token_ids == {0}


def test_add_bos_flag_puts_bos_first(metadata, ours):
    tok = Tokenizer.from_gguf({**metadata, "tokenizer.ggml.add_bos_token": True})
    assert tok.encode("hi there", add_special_tokens=True) == [
        metadata["tokenizer.ggml.bos_token_id"],
        *ours.encode("hi there"),
    ]
    assert tok.encode("hi there") == ours.encode("hi there")


def test_no_template_raises(metadata):
    tok = Tokenizer.from_gguf({k: v for k, v in metadata.items() if k != "tokenizer.chat_template"})
    with pytest.raises(TokenizerError, match="no chat template"):
        tok.apply_chat_template([{"role": "user", "content": "hi"}])


def test_bad_messages_and_template_errors_raise(metadata, ours):
    with pytest.raises(TokenizerError, match="'role' and 'content'"):
        ours.apply_chat_template([{"content": "no role"}])
    rejecting = Tokenizer.from_gguf(
        {**metadata, "tokenizer.chat_template": "{{ raise_exception('roles must alternate') }}"}
    )
    with pytest.raises(TokenizerError, match="roles must alternate"):
        rejecting.apply_chat_template([{"role": "user", "content": "hi"}])
    broken = Tokenizer.from_gguf({**metadata, "tokenizer.chat_template": "{% for %}"})
    with pytest.raises(TokenizerError, match="does not parse"):
        broken.apply_chat_template([{"role": "user", "content": "hi"}])


def test_sandbox_blocks_python_internals(metadata):
    """A template is data from a file: it must not reach Python objects' internals."""
    sneaky = Tokenizer.from_gguf({**metadata, "tokenizer.chat_template": "{{ messages.__class__.__mro__ }}"})
    with pytest.raises(TokenizerError):
        sneaky.apply_chat_template([{"role": "user", "content": "hi"}])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tokenizer.ggml.model": "llama"}, "not supported"),
        ({"tokenizer.ggml.pre": "qwen2"}, "pre-tokenizer 'qwen2' is not supported"),
        ({"tokenizer.ggml.merges": None}, "lacks tokenizer.ggml.merges"),
    ],
)
def test_unsupported_or_broken_metadata_raises(metadata, change, message):
    broken = {k: v for k, v in {**metadata, **change}.items() if v is not None}
    with pytest.raises(TokenizerError, match=message):
        Tokenizer.from_gguf(broken)


def test_from_gguf_accepts_the_reader_itself(smollm2_reader, smollm2_hf_tokenizer):
    text = "Readers work too: 42 🚀"
    assert Tokenizer.from_gguf(smollm2_reader).encode(text) == smollm2_hf_tokenizer.encode(
        text, add_special_tokens=False
    )
