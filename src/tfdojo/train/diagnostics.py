"""Loss-spike and NaN diagnostics: robust z-scores of the loss and gradient norm against recent clean steps.

A step is a spike when its loss or gradient norm is not finite, or lies more than ``z_threshold`` robust
standard deviations above the median of the last few clean steps (the spread measured on the step-to-step
changes of the last ``window`` clean steps)
*and* clearly above it in size (``loss_margin``, ``grad_factor``): the z-score alone flags the slow drifts of
a healthy run, whose recent history is narrow.
Spikes are judged before the optimizer step, so the "skip" policy drops the batch before it does harm; the
"rollback" policy (PaLM, Chowdhery et al., 2022, §5.1: restart from an earlier checkpoint and skip the
offending batches) restores the last checkpoint and cuts the learning rate. Either way the report names the
step, the micro-batches, and the layers whose gradient or update-to-weight ratio jumped.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from tfdojo.train.config import DiagnosticsConfig
from tfdojo.train.parallel.norms import full_norm


def robust_z(value: float, history: list[float], recent: int = 5) -> float:
    """How many robust standard deviations ``value`` lies above the median of the ``recent`` last values.

    The spread comes from step-to-step differences (σ ≈ 1.4826 · median|Δ| / √2), which stay small while the
    loss trends down; the spread of the values themselves would include the trend and hide real spikes.
    """
    t = torch.tensor(history, dtype=torch.float64)
    center = float(t[-recent:].median())
    sigma = 1.4826 * float((t[1:] - t[:-1]).abs().median()) / math.sqrt(2)
    return (value - center) / (sigma + 1e-3 * abs(center) + 1e-12)  # a floor, so a flat history flags no noise


def layer_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Parameters grouped by the model's top-level parts, blocks one by one ("layers.3", "embed", "lm_head")."""
    groups: dict[str, list[nn.Parameter]] = {}
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if id(p) in seen:  # tied embeddings appear once
            continue
        seen.add(id(p))
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] == "layers" and len(parts) > 2 else parts[0]
        groups.setdefault(key, []).append(p)
    return groups


def group_norms(groups: dict[str, list[nn.Parameter]], of: str) -> dict[str, float]:
    """L2 norm per group of the parameters (``of="data"``) or of their gradients (``of="grad"``)."""
    out = {}
    for key, params in groups.items():
        tensors = [
            p.detach() if of == "data" else p.grad.detach() for p in params if of == "data" or p.grad is not None
        ]
        out[key] = float(torch.stack([full_norm(t) for t in tensors]).norm()) if tensors else 0.0
    return out


@dataclass
class SpikeEvent:
    """One detected spike: where, how large, what the policy did, and which layers stood out."""

    step: int
    micro_batches: list[int]
    loss: float
    grad_norm: float
    loss_z: float
    grad_z: float
    action: str
    layers: list[dict[str, float | str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SpikeDetector:
    """Keeps the clean history and judges each step; its state goes into checkpoints."""

    config: DiagnosticsConfig
    losses: deque[float] = field(default_factory=deque)
    grad_norms: deque[float] = field(default_factory=deque)
    group_grads: deque[dict[str, float]] = field(default_factory=deque)
    update_ratios: deque[dict[str, float]] = field(default_factory=deque)

    def judge(self, loss: float, grad_norm: float) -> tuple[bool, float, float]:
        """(is a spike, loss z, grad-norm z) for a step not yet applied."""
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            return True, math.inf, math.inf
        if len(self.losses) < self.config.min_history:
            return False, 0.0, 0.0
        c = self.config
        lz, gz = robust_z(loss, list(self.losses)), robust_z(grad_norm, list(self.grad_norms))
        loss_spike = lz > c.z_threshold and loss > (1 + c.loss_margin) * _median(self.losses)
        grad_spike = gz > c.z_threshold and grad_norm > c.grad_factor * _median(self.grad_norms)
        return loss_spike or grad_spike, lz, gz

    def record(self, loss: float, grad_norm: float, grads: dict[str, float], ratios: dict[str, float]) -> None:
        """Add a clean step to the history (bounded by the window)."""
        for queue, value in (
            (self.losses, loss), (self.grad_norms, grad_norm), (self.group_grads, grads), (self.update_ratios, ratios)
        ):  # fmt: skip
            queue.append(value)
            while len(queue) > self.config.window:
                queue.popleft()

    def jumped_layers(self, grads: dict[str, float], ratios: dict[str, float] | None, top: int = 5) -> list[dict]:
        """The groups whose gradient norm (or update ratio) rose most against their median, largest first."""
        rows = []
        for key, value in grads.items():
            past = [g[key] for g in self.group_grads if key in g]
            base = float(torch.tensor(past).median()) if past else float("nan")
            row: dict[str, float | str] = {
                "layer": key,
                "grad_norm": value,
                "grad_jump": value / base if base else math.inf,
            }
            if ratios is not None and key in ratios:
                past_r = [r[key] for r in self.update_ratios if key in r]
                base_r = float(torch.tensor(past_r).median()) if past_r else float("nan")
                row |= {"update_ratio": ratios[key], "ratio_jump": ratios[key] / base_r if base_r else math.inf}
            rows.append(row)
        rows.sort(key=lambda r: -max(_finite(r.get("grad_jump")), _finite(r.get("ratio_jump"))))
        return rows[:top]

    def state_dict(self) -> dict[str, Any]:
        return {k: list(getattr(self, k)) for k in ("losses", "grad_norms", "group_grads", "update_ratios")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, deque(v))


def _median(values: deque[float], recent: int = 5) -> float:
    return float(torch.tensor(list(values)[-recent:], dtype=torch.float64).median())


def _finite(x: Any) -> float:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else (1e30 if x == math.inf else 0.0)
