"""The model's half of grading: the answer's clauses, their similarity to each key point and misconception, aliases.

One forward pass per answer: every clause (and every sentence made of several affirmed clauses) goes into one batch.
The rubric's texts (key points, their aliases and contrasts, misconceptions) are embedded once per rubric, when the
question is shown (``warm_rubric``), and cached.

A key point is compared with a clause through its text and, separately, its closest alias (a terse "rows sum to
one" is close to the alias, far from the long sentence). Its *contrast* similarity is the best of its wrong versions'
(``contrasts.py``) among those whose exchanged-in term the clause says. Clauses are embedded with their symbols
read out (``formulas.py``: "QKᵀ/√d" -> "Q K transpose divided by the square root of d").
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import Tensor

from tfdojo.practice.grading.clauses import Clause, split_clauses, split_sentences, states_negative
from tfdojo.practice.grading.contrasts import Contrast, contrasts, says_term
from tfdojo.practice.grading.embedder import Embedder
from tfdojo.practice.grading.formulas import read_symbols
from tfdojo.practice.grading.words import contains_phrase
from tfdojo.practice.rubric import Rubric

# embedder -> rubric -> embeddings of its reference texts (R, D), in the order of ``References.texts``.
_REFERENCES: weakref.WeakKeyDictionary[Embedder, dict[Rubric, Tensor]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class References:
    """A rubric's texts to compare with: key points, misconceptions, then aliases and contrasts with their points."""

    n_points: int
    n_misconceptions: int
    alias_owner: tuple[int, ...]  # key point of each alias
    contrasts: tuple[tuple[int, Contrast], ...]  # (key point, contrast)
    texts: tuple[str, ...]


def rubric_references(rubric: Rubric) -> References:
    """Every text of a rubric the answer is compared with, in one list (its order indexes the embeddings)."""
    points = [p.text for p in rubric.key_points]
    aliases = [(k, a) for k, p in enumerate(rubric.key_points) for a in p.aliases]
    wrong = [(k, c) for k, p in enumerate(rubric.key_points) for c in contrasts(p.text)]
    texts = points + [m.text for m in rubric.misconceptions] + [a for _, a in aliases] + [c.text for _, c in wrong]
    return References(len(points), len(rubric.misconceptions), tuple(k for k, _ in aliases), tuple(wrong), tuple(texts))


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
    point_similarity: Tensor  # (C, K): to the point's text
    alias_similarity: Tensor  # (C, K): to the closest of the point's aliases (-1 if it has none)
    misconception_similarity: Tensor  # (C, M)
    contrast_similarity: Tensor  # (C, K): best wrong version whose exchanged-in term the clause says (-1 if none)
    contrast_text: tuple[tuple[str | None, ...], ...]  # (C, K): that wrong version
    point_alias: Tensor  # (C, K) bool
    misconception_alias: Tensor  # (C, M) bool
    point_negated: tuple[bool, ...]  # a key point may itself be a negative claim ("uses no causal mask")
    misconception_negated: tuple[bool, ...]
    answer: str = ""  # the answer as written (the cross stage reads its sentences)


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
    """The embeddings of a rubric's reference texts (R, D), computed once per embedder and rubric.

    Call it when a question is shown, so the answer's grade pays only for the answer's own clauses.
    """
    cached = _REFERENCES.setdefault(embedder, {})
    if rubric not in cached:
        cached[rubric] = embedder.embed(list(rubric_references(rubric).texts))
    return cached[rubric]


def _candidate_vectors(
    candidates: tuple[Clause, ...], parts: tuple[tuple[int, ...], ...], embedder: Embedder
) -> Tensor:
    """Embed the clauses (one batch); a sentence's vector is the length-weighted mean of its clauses', renormalised.

    Mean pooling over a sentence's tokens is close to the token-weighted mean of its clauses' mean-pooled states, so
    the sentences cost no extra forward pass.
    """
    n_clauses = sum(len(p) == 1 for p in parts)
    clauses = embedder.embed([read_symbols(c.text) for c in candidates[:n_clauses]]).float()  # (n, D)
    lengths = torch.tensor([float(len(c.text.split())) for c in candidates[:n_clauses]])
    sentences = [(clauses[list(p)] * lengths[list(p), None]).sum(0) for p in parts[n_clauses:]]
    if not sentences:
        return clauses
    return torch.cat([clauses, torch.nn.functional.normalize(torch.stack(sentences), dim=-1)])


def _contrast_matrix(
    candidates: tuple[Clause, ...], similarity: Tensor, refs: References
) -> tuple[Tensor, tuple[tuple[str | None, ...], ...]]:
    """(C, K) best similarity to a contrast of each point that the clause backs by saying its term, and that text."""
    n_c = len(candidates)
    best = torch.full((n_c, refs.n_points), -1.0)
    text: list[list[str | None]] = [[None] * refs.n_points for _ in range(n_c)]
    first = refs.n_points + refs.n_misconceptions + len(refs.alias_owner)
    for j, (k, contrast) in enumerate(refs.contrasts):
        for c, clause in enumerate(candidates):
            sim = float(similarity[c, first + j])
            if sim > best[c, k] and says_term(clause.text, contrast.term):
                best[c, k], text[c][k] = sim, contrast.text
    return best, tuple(tuple(row) for row in text)


def collect_evidence(rubric: Rubric, answer: str, embedder: Embedder) -> Evidence:
    """Split, embed (one forward pass) and compare an answer with a rubric's key points and misconceptions."""
    candidates, parts = candidate_clauses(answer)
    refs = rubric_references(rubric)
    n_points, n_miscon = refs.n_points, refs.n_misconceptions
    references = reference_embeddings(rubric, embedder).float()
    vectors = _candidate_vectors(candidates, parts, embedder) if candidates else references[:0]
    similarity = vectors @ references.T  # (C, R)
    aliases = similarity[:, n_points + n_miscon : n_points + n_miscon + len(refs.alias_owner)]
    alias_similarity = torch.full((len(candidates), n_points), -1.0)
    for a, k in enumerate(refs.alias_owner):
        alias_similarity[:, k] = torch.maximum(alias_similarity[:, k], aliases[:, a])
    contrast_similarity, contrast_text = _contrast_matrix(candidates, similarity, refs)
    return Evidence(
        rubric=rubric,
        candidates=candidates,
        parts=parts,
        point_similarity=similarity[:, :n_points],
        alias_similarity=alias_similarity,
        misconception_similarity=similarity[:, n_points : n_points + n_miscon],
        contrast_similarity=contrast_similarity,
        contrast_text=contrast_text,
        point_alias=_alias_matrix(candidates, [p.aliases for p in rubric.key_points]),
        misconception_alias=_alias_matrix(candidates, [m.aliases for m in rubric.misconceptions]),
        point_negated=tuple(states_negative(p.text) for p in rubric.key_points),
        misconception_negated=tuple(states_negative(m.text) for m in rubric.misconceptions),
        answer=answer,
    )
