"""The model's half of grading: the answer's clauses, their similarity to each key point and misconception, aliases.

One forward pass per answer: every clause (and every sentence made of several affirmed clauses) goes into one batch,
together with the rubric's texts the first time that rubric is seen; the rubric's embeddings are then cached.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import Tensor

from tfdojo.practice.grading.clauses import Clause, split_clauses, split_sentences, states_negative
from tfdojo.practice.grading.embedder import Embedder
from tfdojo.practice.grading.words import contains_phrase
from tfdojo.practice.rubric import Rubric

# embedder -> rubric -> embeddings of its key points then misconceptions (K + M, D).
_REFERENCES: weakref.WeakKeyDictionary[Embedder, dict[Rubric, Tensor]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Evidence:
    """Everything the verdict needs, computed once per answer so thresholds can be swept without the model.

    ``candidates`` are the answer's clauses, then each sentence of several clauses none of which is negated (an idea
    may span a clause boundary). ``parts`` lists, for each candidate, the clauses it is made of (a clause is made of
    itself). Matrices are indexed (candidate, key point) and (candidate, misconception).
    """

    rubric: Rubric
    candidates: tuple[Clause, ...]
    parts: tuple[tuple[int, ...], ...]
    point_similarity: Tensor  # (C, K)
    misconception_similarity: Tensor  # (C, M)
    point_alias: Tensor  # (C, K) bool
    misconception_alias: Tensor  # (C, M) bool
    point_negated: tuple[bool, ...]  # a key point may itself be a negative claim ("uses no causal mask")
    misconception_negated: tuple[bool, ...]


def candidate_clauses(answer: str) -> tuple[tuple[Clause, ...], tuple[tuple[int, ...], ...]]:
    """The clauses of the answer, then its multi-clause sentences whose clauses are all affirmed; and their parts."""
    clauses: list[Clause] = []
    parts: list[tuple[int, ...]] = []
    sentences: list[tuple[Clause, tuple[int, ...]]] = []
    for sentence in split_sentences(answer):
        inside = split_clauses(sentence)
        indices = tuple(range(len(clauses), len(clauses) + len(inside)))
        clauses.extend(inside)
        parts.extend((i,) for i in indices)
        if len(inside) > 1 and not any(c.negated for c in inside):
            sentences.append((Clause(sentence), indices))
    return tuple(clauses) + tuple(c for c, _ in sentences), tuple(parts) + tuple(p for _, p in sentences)


def _alias_matrix(candidates: tuple[Clause, ...], alias_lists: list[tuple[str, ...]]) -> Tensor:
    """(C, R) bool: whether any alias of reference r occurs in candidate c."""
    return torch.tensor(
        [[any(contains_phrase(c.text, a) for a in aliases) for aliases in alias_lists] for c in candidates],
        dtype=torch.bool,
    ).reshape(len(candidates), len(alias_lists))


def reference_embeddings(rubric: Rubric, embedder: Embedder) -> Tensor:
    """The embeddings of a rubric's key points then misconceptions (K + M, D), computed once per embedder and rubric.

    Call it when a question is shown, so the answer's grade pays only for the answer's own clauses.
    """
    cached = _REFERENCES.setdefault(embedder, {})
    if rubric not in cached:
        cached[rubric] = embedder.embed([p.text for p in rubric.key_points] + [m.text for m in rubric.misconceptions])
    return cached[rubric]


def _candidate_vectors(
    candidates: tuple[Clause, ...], parts: tuple[tuple[int, ...], ...], embedder: Embedder
) -> Tensor:
    """Embed the clauses (one batch); a sentence's vector is the length-weighted mean of its clauses', renormalised.

    Mean pooling over a sentence's tokens is close to the token-weighted mean of its clauses' mean-pooled states, so
    the sentences cost no extra forward pass.
    """
    n_clauses = sum(len(p) == 1 for p in parts)
    clauses = embedder.embed([c.text for c in candidates[:n_clauses]]).float()  # (n, D)
    lengths = torch.tensor([float(len(c.text.split())) for c in candidates[:n_clauses]])
    sentences = [(clauses[list(p)] * lengths[list(p), None]).sum(0) for p in parts[n_clauses:]]
    if not sentences:
        return clauses
    return torch.cat([clauses, torch.nn.functional.normalize(torch.stack(sentences), dim=-1)])


def collect_evidence(rubric: Rubric, answer: str, embedder: Embedder) -> Evidence:
    """Split, embed (one forward pass) and compare an answer with a rubric's key points and misconceptions."""
    candidates, parts = candidate_clauses(answer)
    n_points, n_miscon = len(rubric.key_points), len(rubric.misconceptions)
    references = reference_embeddings(rubric, embedder).float()
    vectors = _candidate_vectors(candidates, parts, embedder) if candidates else references[:0]
    similarity = vectors @ references.T  # (C, K + M)
    return Evidence(
        rubric=rubric,
        candidates=candidates,
        parts=parts,
        point_similarity=similarity[:, :n_points],
        misconception_similarity=similarity[:, n_points : n_points + n_miscon],
        point_alias=_alias_matrix(candidates, [p.aliases for p in rubric.key_points]),
        misconception_alias=_alias_matrix(candidates, [m.aliases for m in rubric.misconceptions]),
        point_negated=tuple(states_negative(p.text) for p in rubric.key_points),
        misconception_negated=tuple(states_negative(m.text) for m in rubric.misconceptions),
    )
