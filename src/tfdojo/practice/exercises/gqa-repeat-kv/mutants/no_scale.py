import torch


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, Hkv, S, D) -> (B, Hkv * n_rep, S, D), each kv head repeated n_rep times in a row."""
    if n_rep == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None].expand(b, h, n_rep, s, d).reshape(b, h * n_rep, s, d)  # (B, Hkv, n_rep, S, D) -> merged


def grouped_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """Attention of q (B, Hq, T, D) over k, v (B, Hkv, S, D) with each kv head serving Hq / Hkv query heads."""
    hq, hkv = q.shape[1], k.shape[1]
    if hq % hkv:
        raise ValueError(f"query heads ({hq}) must be a multiple of key/value heads ({hkv})")
    k, v = repeat_kv(k, hq // hkv), repeat_kv(v, hq // hkv)
    scores = q @ k.transpose(-2, -1)  # (B, Hq, T, S)
    if causal:
        t, s = q.shape[2], k.shape[2]
        keep = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(diagonal=s - t)
        scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
