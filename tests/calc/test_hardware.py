"""Hardware presets against their datasheets: peaks, bandwidths, memory, ridge points, names."""

import pytest

from tfdojo.calc.hardware import HARDWARE, get_accelerator, peak_ratio, ridge_point
from tfdojo.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "bf16_tflops", "hbm_tb_s", "memory_gb"),
    [  # datasheet figures: dense bf16 (the sparse headline ÷ 2), HBM bandwidth, memory (GiB as sold, H200 in GB)
        ("a100-40gb", 312, 1.555, 40 * 2**30 / 1e9),
        ("a100-80gb", 312, 2.039, 80 * 2**30 / 1e9),
        ("h100-80gb", 989.5, 3.35, 80 * 2**30 / 1e9),
        ("h100-pcie", 756.5, 2.0, 80 * 2**30 / 1e9),
        ("h200", 989.5, 4.8, 141),
    ],
)
def test_datasheet_numbers(name: str, bf16_tflops: float, hbm_tb_s: float, memory_gb: float) -> None:
    acc = get_accelerator(name)
    assert acc.flops("bfloat16") == pytest.approx(bf16_tflops * 1e12)
    assert acc.hbm_bytes_per_s == pytest.approx(hbm_tb_s * 1e12)
    assert acc.memory_bytes == pytest.approx(memory_gb * 1e9)
    assert acc.source


def test_ridge_point_h100() -> None:
    assert ridge_point("h100-80gb").value == pytest.approx(989.5e12 / 3.35e12)  # ≈ 295 FLOP/byte


def test_peak_ratio_h100_over_a100() -> None:
    assert peak_ratio("h100", "a100").value == pytest.approx(989.5 / 312)
    assert peak_ratio("h200", "h100", "hbm").value == pytest.approx(4.8 / 3.35)


def test_aliases_and_case() -> None:
    assert get_accelerator("H100-SXM") is HARDWARE["h100-80gb"]


def test_unknown_accelerator_suggests() -> None:
    with pytest.raises(ConfigError, match="h100-80gb"):
        get_accelerator("h100-80")


def test_missing_dtype_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="float8"):
        get_accelerator("a100-80gb").flops("float8")
