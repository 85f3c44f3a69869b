import torch


def swiglu(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    """(silu(x @ w_gate) * (x @ w_up)) @ w_down."""
    gate = x @ w_gate
    return (torch.sigmoid(gate) * (x @ w_up)) @ w_down
