"""Parallelism formulas against the ZeRO paper, hand-computed cases, a simulated ring and a simulated pipeline."""

import numpy as np
import pytest

from tfdojo.calc.parallel import (
    ActivationShape,
    activation_memory,
    cp_comm,
    dp_comm,
    pp_bubble,
    pp_comm,
    tp_comm,
    zero_memory,
)
from tfdojo.errors import ConfigError


@pytest.mark.parametrize(
    ("stage", "published_gb"),
    [(0, 120), (1, 31.4), (2, 16.6), (3, 1.9)],  # Rajbhandari et al. (2020), Figure 1: Ψ = 7.5B, N_d = 64, K = 12
)
def test_zero_paper_figure_1(stage: int, published_gb: float) -> None:
    assert zero_memory(7.5e9, 64, stage).value / 1e9 == pytest.approx(published_gb, rel=0.02)


def test_zero_stages_by_hand() -> None:
    psi, n = 1000, 8
    assert zero_memory(psi, n, 0).value == 16 * psi
    assert zero_memory(psi, n, 1).value == 4 * psi + 12 * psi / n
    assert zero_memory(psi, n, 2).value == 2 * psi + 14 * psi / n
    assert zero_memory(psi, n, 3).value == 16 * psi / n
    r = zero_memory(psi, n, 1)
    assert r.parts == {"weights": 2 * psi, "gradients": 2 * psi, "optimizer": 12 * psi / n}


def _ring_all_reduce(buffers: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Reduce-scatter then all-gather around a ring; returns the results and the elements each rank sent."""
    n = len(buffers)
    chunks = [list(np.array_split(b.copy(), n)) for b in buffers]
    sent = 0
    for step in range(n - 1):  # reduce-scatter: rank r passes chunk (r - step) to rank r + 1
        outgoing = [(r, (r - step) % n, chunks[r][(r - step) % n].copy()) for r in range(n)]
        for r, c, data in outgoing:
            chunks[(r + 1) % n][c] += data
        sent += outgoing[0][2].size
    for step in range(n - 1):  # all-gather: rank r passes its finished chunk (r + 1 - step) on
        outgoing = [(r, (r + 1 - step) % n, chunks[r][(r + 1 - step) % n].copy()) for r in range(n)]
        for r, c, data in outgoing:
            chunks[(r + 1) % n][c] = data
        sent += outgoing[0][2].size
    return [np.concatenate(c) for c in chunks], sent


@pytest.mark.parametrize("ranks", [2, 4, 8])
def test_dp_traffic_matches_a_simulated_ring_all_reduce(ranks: int) -> None:
    psi = 64 * ranks
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(psi) for _ in range(ranks)]
    reduced, sent_elements = _ring_all_reduce(grads)
    for r in reduced:
        np.testing.assert_allclose(r, np.sum(grads, axis=0))
    assert dp_comm(psi, ranks, stage=0).value == sent_elements * 2  # 2-byte gradients
    assert dp_comm(psi, ranks, stage=2).value == sent_elements * 2
    assert dp_comm(psi, ranks, stage=3).value == pytest.approx(1.5 * sent_elements * 2)


def test_tp_traffic_by_hand() -> None:
    # 2 layers, h=8, s=4, b=1, t=2, 2-byte activations: each all-reduce of 64 bytes sends 2·(1/2)·64 = 64
    # bytes per rank; 4 all-reduces per layer (2 forward, 2 backward) · 2 layers · 3 micro-batches = 24
    assert tp_comm(2, 8, 4, 1, 2, micro_batches=3).value == 24 * 64
    assert tp_comm(2, 8, 4, 1, 1).value == 0  # one rank sends nothing


def test_pp_and_cp_traffic_by_hand() -> None:
    # an activation of 1·4·8·2 = 64 bytes goes forward and its gradient back, per micro-batch
    assert pp_comm(8, 4, 1, micro_batches=5).value == 2 * 5 * 64
    # c=4: a K+V chunk is 2·1·(16/4)·8·2 = 128 bytes, forwarded 3 times per layer, ×3 with backward
    assert cp_comm(2, 8, 16, 1, 4).value == 3 * 3 * 128 * 2


def _gpipe_idle_fraction(stages: int, micro: int, fwd: float, bwd: float) -> float:
    """Simulate GPipe (all forwards, then all backwards in reverse stage order) and measure idle time."""
    done = np.zeros((stages + 1, micro + 1))
    for s in range(1, stages + 1):
        for i in range(1, micro + 1):
            done[s, i] = max(done[s - 1, i], done[s, i - 1]) + fwd
    back = np.zeros((stages + 2, micro + 1))
    back[stages + 1, :] = done[stages, micro]  # the last stage turns round once every forward is done
    back[:, 0] = done[stages, micro]
    for s in range(stages, 0, -1):
        for i in range(1, micro + 1):
            back[s, i] = max(back[s + 1, i], back[s, i - 1]) + bwd
    total = back[1, micro]
    return 1 - micro * (fwd + bwd) / total


@pytest.mark.parametrize(("p", "m"), [(4, 4), (4, 16), (8, 32), (2, 1), (1, 8)])
def test_bubble_matches_a_simulated_pipeline(p: int, m: int) -> None:
    assert pp_bubble(p, m).value == pytest.approx(_gpipe_idle_fraction(p, m, fwd=1.0, bwd=2.0))


def test_bubble_4_stages_4_micro_batches_is_3_7() -> None:
    assert pp_bubble(4, 4).value == pytest.approx(3 / 7)  # ≈ 43%


def test_activation_memory_korthikanti_table_2() -> None:
    # GPT-3 175B: s=2048, b=1, h=12288, a=96 so 5as/h = 80; Korthikanti et al. (2022), Table 2, per layer
    shape = ActivationShape(layers=1, hidden=12288, heads=96, seq_len=2048, micro_batch=1)
    sbh = 2048 * 12288
    assert activation_memory(shape, flash_attention=False).value == sbh * (34 + 80)
    assert activation_memory(shape, tp=8, flash_attention=False).value == sbh * (10 + 24 / 8 + 80 / 8)
    sp = activation_memory(shape, tp=8, sequence_parallel=True, flash_attention=False)
    assert sp.value == sbh * (34 / 8 + 80 / 8)
    assert activation_memory(shape, recompute=True).value == 2 * sbh
    assert activation_memory(shape).value == 34 * sbh  # FlashAttention drops the 5as/h term


@pytest.mark.parametrize(
    "call",
    [
        lambda: zero_memory(1e9, 8, 4),
        lambda: zero_memory(1e9, 0, 1),
        lambda: dp_comm(1e9, 8, stage=5),
        lambda: tp_comm(2, 8, 4, 1, 0),
        lambda: pp_bubble(0, 4),
        lambda: ActivationShape(0, 8, 2, 4, 1),
    ],
)
def test_bad_inputs_raise(call) -> None:
    with pytest.raises(ConfigError):
        call()
