"""Hidden tests for int8 quantization: torch.quantize_per_channel as the reference, the rounding error bound."""

import warnings

import torch


def _weights(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(6, 33, generator=g)
    w[1] *= 1e-3  # a row of small weights: per-channel scales must keep its precision
    w[4, 7] = -9.0  # a negative entry dominates this row
    return w


def test_matches_torch_per_channel_quantization(sub) -> None:
    w = _weights(0)
    q, scale = sub.quantize_int8(w)
    assert q.dtype == torch.int8 and q.shape == w.shape
    assert scale.shape == (6, 1) and scale.dtype == torch.float32
    expected_scale = w.abs().amax(1) / 127
    torch.testing.assert_close(scale.squeeze(1), expected_scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = torch.quantize_per_channel(w, expected_scale, torch.zeros(6, dtype=torch.long), 0, torch.qint8)
    assert (q.int() - reference.int_repr().int()).abs().max() <= 1  # an exact .5 may round either way
    assert (q == reference.int_repr()).float().mean() > 0.99


def test_hand_example(sub) -> None:
    w = torch.tensor([[-3.0, 1.0, 0.0, 1.5], [0.5, 0.25, -0.125, 0.0]])
    q, scale = sub.quantize_int8(w)
    torch.testing.assert_close(scale, torch.tensor([[3 / 127], [0.5 / 127]]))
    assert q.tolist() == [[-127, 42, 0, 64], [127, 64, -32, 0]]


def test_error_bound_and_extremes(sub) -> None:
    w = _weights(1)
    q, scale = sub.quantize_int8(w)
    restored = sub.dequantize_int8(q, scale)
    assert restored.dtype == torch.float32 and restored.shape == w.shape
    assert torch.all((w - restored).abs() <= scale / 2 * (1 + 1e-5) + 1e-12)
    assert torch.all(q.int().abs().amax(1) == 127)
    assert int(q.int().min()) >= -127
    row_max = w.abs().argmax(1)
    torch.testing.assert_close(restored.gather(1, row_max[:, None]), w.gather(1, row_max[:, None]))


def test_per_channel_precision(sub) -> None:
    w = _weights(2)
    q, scale = sub.quantize_int8(w)
    small = sub.dequantize_int8(q, scale)[1]
    relative = (small - w[1]).abs().max() / w[1].abs().max()
    assert relative <= 0.5 / 127 + 1e-6, relative


def test_zero_row(sub) -> None:
    w = torch.zeros(3, 5)
    w[0] = torch.tensor([1.0, -2.0, 0.0, 0.5, 2.0])
    q, scale = sub.quantize_int8(w)
    assert torch.isfinite(scale).all() and float(scale[1]) == 1.0
    restored = sub.dequantize_int8(q, scale)
    assert torch.isfinite(restored).all() and torch.all(restored[1:] == 0)


def test_int8_linear(sub) -> None:
    w = _weights(3)
    x = torch.randn(2, 4, 33, generator=torch.Generator().manual_seed(4))
    q, scale = sub.quantize_int8(w)
    y = sub.int8_linear(x, q, scale)
    assert y.shape == (2, 4, 6)
    exact = x.double() @ (q.double() * scale.double()).T
    torch.testing.assert_close(y.double(), exact, rtol=1e-5, atol=1e-5)
    bound = x.double().abs().sum(-1, keepdim=True) * scale.double().T / 2  # Σ|x| · scale / 2 per output
    assert torch.all((y.double() - x.double() @ w.double().T).abs() <= bound * (1 + 1e-4) + 1e-6)
