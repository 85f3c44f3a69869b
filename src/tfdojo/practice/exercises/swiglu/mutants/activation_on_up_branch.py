import torch


def swiglu(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    """(silu(x @ w_gate) * (x @ w_up)) @ w_down."""
    up = x @ w_up
    return (up * torch.sigmoid(up) * (x @ w_gate)) @ w_down
