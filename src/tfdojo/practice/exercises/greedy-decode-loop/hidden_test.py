"""Hidden tests for cached greedy decoding: full recomputation with tfdojo's eager attention (fp64) is the reference."""

import torch

from tfdojo.nn.attention import eager_attention

VOCAB, DIM, HEADS, HEAD_DIM, MAX_POS = 13, 16, 2, 8, 64


class _TinyModel:
    """One attention layer with token and position embeddings; counts the positions it projects."""

    def __init__(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)

        def rand(*shape: int, std: float = 1.0) -> torch.Tensor:
            return torch.randn(*shape, generator=g, dtype=torch.float64) * std

        self.embed, self.pos = rand(VOCAB, DIM), rand(MAX_POS, DIM, std=1.5)
        self.wq, self.wk, self.wv = (rand(DIM, HEADS * HEAD_DIM, std=DIM**-0.5) for _ in range(3))
        self.wo = rand(HEADS * HEAD_DIM, DIM, std=(HEADS * HEAD_DIM) ** -0.5)
        self.unembed = rand(DIM, VOCAB, std=3 * DIM**-0.5)
        self.projected = 0

    def _x(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.embed[ids] + self.pos[positions]  # (B, n, DIM)

    def project(self, ids: torch.Tensor, positions: torch.Tensor):
        assert positions.shape == (ids.shape[1],), "positions must be (n,) for ids (B, n)"
        self.projected += ids.shape[1]
        x = self._x(ids, positions)
        b, n = ids.shape
        return tuple((x @ w).view(b, n, HEADS, HEAD_DIM).transpose(1, 2) for w in (self.wq, self.wk, self.wv))

    def readout(self, attn: torch.Tensor, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = attn.shape
        h = self._x(ids, positions) + attn.transpose(1, 2).reshape(b, n, HEADS * HEAD_DIM) @ self.wo
        return torch.tanh(h) @ self.unembed  # (B, n, VOCAB)


def _full_logits(model: _TinyModel, ids: torch.Tensor) -> torch.Tensor:
    positions = torch.arange(ids.shape[1])
    x = model._x(ids, positions)
    b, t = ids.shape
    q, k, v = ((x @ w).view(b, t, HEADS, HEAD_DIM).transpose(1, 2) for w in (model.wq, model.wk, model.wv))
    return model.readout(eager_attention(q, k, v, causal=True), ids, positions)


def _recompute_greedy(model: _TinyModel, prompt: torch.Tensor, n: int) -> torch.Tensor:
    ids = prompt
    for _ in range(n):
        ids = torch.cat((ids, _full_logits(model, ids)[:, -1].argmax(-1, keepdim=True)), dim=1)
    return ids[:, prompt.shape[1] :]


def _prompt(seed: int, b: int, t: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (b, t), generator=torch.Generator().manual_seed(seed))


def test_forward_logits_match_reference(sub) -> None:
    model = _TinyModel(0)
    ids = _prompt(1, 2, 9)
    torch.testing.assert_close(sub.forward_logits(model, ids), _full_logits(model, ids))


def test_greedy_equals_full_recomputation(sub) -> None:
    model = _TinyModel(2)
    prompt = _prompt(3, 3, 5)
    got = sub.greedy_decode(model, prompt, 20)
    assert got.dtype == torch.long and got.shape == (3, 20)
    assert torch.equal(got, _recompute_greedy(model, prompt, 20))


def test_single_token_prompt_and_single_step(sub) -> None:
    model = _TinyModel(4)
    prompt = _prompt(5, 2, 1)
    assert torch.equal(sub.greedy_decode(model, prompt, 1), _recompute_greedy(model, prompt, 1))
    assert torch.equal(sub.greedy_decode(model, prompt, 12), _recompute_greedy(model, prompt, 12))


def test_each_position_is_projected_once(sub) -> None:
    model = _TinyModel(6)
    prompt = _prompt(7, 2, 6)
    sub.greedy_decode(model, prompt, 25)
    assert model.projected <= 6 + 25, f"projected {model.projected} positions; a KV cache needs at most {6 + 25}"


def test_eos_stops_rows_and_the_loop(sub) -> None:
    model = _TinyModel(8)
    prompt = _prompt(9, 2, 4)
    reference = _recompute_greedy(model, prompt, 16)
    eos = int(reference[0, 3])
    expected = reference.clone()
    first = []
    for row in range(2):
        hits = (reference[row] == eos).nonzero()
        at = int(hits[0]) if len(hits) else 16
        expected[row, at:] = eos
        first.append(at)
    length = min(16, max(first) + 1)
    got = sub.greedy_decode(model, prompt, 16, eos_id=eos)
    assert torch.equal(got, expected[:, :length]), (got, expected[:, :length])


def test_all_rows_finish_early(sub) -> None:
    model = _TinyModel(10)
    prompt = _prompt(11, 1, 3)
    reference = _recompute_greedy(model, prompt, 10)
    eos = int(reference[0, 2])
    at = int((reference[0] == eos).nonzero()[0])
    got = sub.greedy_decode(model, prompt, 10, eos_id=eos)
    assert torch.equal(got, reference[:, : at + 1])
