"""Hidden tests for document masks: per-document causal attention (tfdojo eager, fp64) and explicit loops."""

import torch

from tfdojo.nn.attention import eager_attention


def _positions_by_loop(doc_ids: list[int]) -> list[int]:
    out, offset = [], 0
    for i, d in enumerate(doc_ids):
        offset = 0 if i == 0 or d != doc_ids[i - 1] else offset + 1
        out.append(offset)
    return out


def test_document_ids_hand_example(sub) -> None:
    starts = torch.tensor([[1, 0, 0, 1, 0, 1], [0, 0, 1, 0, 0, 0]], dtype=torch.bool)
    ids = sub.document_ids(starts)
    assert ids.dtype == torch.long
    assert ids.tolist() == [[0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 1]]


def test_mask_hand_example(sub) -> None:
    mask = sub.document_causal_mask(torch.tensor([[0, 0, 1, 1, 1]]))
    expected = torch.tensor(
        [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 1, 1, 1]], dtype=torch.bool
    )
    assert mask.dtype == torch.bool and mask.shape == (1, 5, 5)
    assert torch.equal(mask[0], expected)


def test_single_document_is_causal_and_one_token_documents_are_diagonal(sub) -> None:
    t = 7
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    assert torch.equal(sub.document_causal_mask(torch.zeros(1, t, dtype=torch.long))[0], causal)
    assert torch.equal(sub.document_causal_mask(torch.arange(t).unsqueeze(0))[0], torch.eye(t, dtype=torch.bool))


def test_positions_restart_per_document(sub) -> None:
    rows = [[0, 0, 0, 1, 1, 2, 2, 2, 2], [3, 3, 7, 7, 7, 7, 8, 9, 9], [5] * 9]
    got = sub.document_positions(torch.tensor(rows))
    assert got.dtype == torch.long
    assert got.tolist() == [_positions_by_loop(r) for r in rows]


def test_packed_attention_equals_attention_per_document(sub) -> None:
    g = torch.Generator().manual_seed(0)
    lengths = [[3, 1, 5, 4], [13]]
    t = 13
    starts = torch.zeros(2, t, dtype=torch.bool)
    for row, lens in enumerate(lengths):
        edges = torch.tensor([0, *lens[:-1]]).cumsum(0)
        starts[row, edges] = True
    q, k, v = (torch.randn(2, 2, t, 8, generator=g, dtype=torch.float64) for _ in range(3))
    mask = sub.document_causal_mask(sub.document_ids(starts))
    packed = eager_attention(q, k, v, mask=mask[:, None])
    for row, lens in enumerate(lengths):
        at = 0
        for n in lens:
            part = slice(at, at + n)
            alone = eager_attention(
                q[row : row + 1, :, part], k[row : row + 1, :, part], v[row : row + 1, :, part], causal=True
            )
            torch.testing.assert_close(packed[row : row + 1, :, part], alone)
            at += n


def test_batch_rows_are_independent(sub) -> None:
    ids = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    mask = sub.document_causal_mask(ids)
    assert torch.equal(mask[0], sub.document_causal_mask(ids[:1])[0])
    assert torch.equal(mask[1], sub.document_causal_mask(ids[1:])[0])
    assert not torch.equal(mask[0], mask[1])
    assert sub.document_positions(ids).tolist() == [[0, 1, 0, 1], [0, 0, 1, 2]]
