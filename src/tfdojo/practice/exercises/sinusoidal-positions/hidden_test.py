import math

import torch

from tfdojo.nn.positions import sinusoidal_table


def test_matches_reference(sub) -> None:
    got = sub.sinusoidal_table(50, 16)
    assert got.dtype == torch.float32, f"expected float32, got {got.dtype}"
    assert got.shape == (50, 16), f"expected shape (50, 16), got {tuple(got.shape)}"
    torch.testing.assert_close(got, sinusoidal_table(50, 16))


def test_row_zero_and_a_hand_value(sub) -> None:
    table = sub.sinusoidal_table(4, 6)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    angle = 3 / 10000.0 ** (2 / 6)  # position 3, pair i = 1
    torch.testing.assert_close(table[3, 2:4], torch.tensor([math.sin(angle), math.cos(angle)], dtype=torch.float32))


def test_other_base_and_long_positions(sub) -> None:
    torch.testing.assert_close(sub.sinusoidal_table(2048, 8, base=500.0), sinusoidal_table(2048, 8, base=500.0))


def test_odd_dim_raises(sub) -> None:
    try:
        sub.sinusoidal_table(4, 7)
    except ValueError:
        return
    raise AssertionError("an odd dim must raise ValueError")
