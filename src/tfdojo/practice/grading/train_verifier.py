"""Train the verifier (``verifier.py``) and write ``verifier.safetensors``: reproducible (fixed seed), CPU, one thread.

    python -m tfdojo.practice.grading.train_verifier [--epochs 6] [--out PATH]

Pairs (key point, sentence, label), from two sources, never from a question of the held-out half of
``bench/data/grading_answers.toml`` (the split of ``agreement.split_halves``), so the benchmark stays held out:

- the bank's rubrics: a point and each of its aliases (entails); a point and its contrasts, made by exchanging terms
  (``contrasts.py``), and the misconceptions and listed mistakes closest to it (contradicts); a point and the next
  point of its question (other); the sentences of the question's short answer closest to a point (entails);
- the labelled answers of half of the calibration questions (``agreement.split_calibration``; the other half is
  left for tuning the thresholds), clause by clause, each clause paired with its closest key point: entails in
  answers labelled correct or partial, contradicts in answers labelled incorrect for a wrong claim.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.practice.grading.agreement import LabelledAnswer, load_labelled_answers, split_calibration, split_halves
from tfdojo.practice.grading.clauses import split_clauses, split_sentences
from tfdojo.practice.grading.contrasts import contrasts
from tfdojo.practice.grading.embedder import default_embedder
from tfdojo.practice.grading.verifier import CONTRADICTS, ENTAILS, LABELS, OTHER, WEIGHTS, Verifier

ANSWERS = Path(__file__).parents[4] / "bench" / "data" / "grading_answers.toml"
SEED = 0
Pair = tuple[str, str, int]
_RIGHT_KINDS = {"paraphrase", "terse", "appended", "formula", "partial"}
_WRONG_KINDS = {"confident-wrong", "swapped", "wrong", "negation"}


@cache
def _embedded(encoder, points: tuple[str, ...]) -> Tensor:
    """A question's key points, embedded once."""
    return encoder.embed(list(points))


def _closest(encoder, points: list[str], texts: list[str]) -> list[tuple[int, float]]:
    """For each text, the index of its closest point and the cosine similarity."""
    if not texts:
        return []
    sims = encoder.embed(texts) @ _embedded(encoder, tuple(points)).T  # (N, K)
    best = sims.max(dim=1)
    return list(zip(best.indices.tolist(), best.values.tolist(), strict=True))


def held_points(bank, exclude: set[str]) -> set[str]:
    """The key-point texts of the excluded questions (another question may share one word for word)."""
    return {p.text for q in bank if q.id in exclude and q.rubric is not None for p in q.rubric.key_points}


def bank_pairs(bank, exclude: set[str], encoder) -> list[Pair]:
    """Pairs from the rubrics of the bank's questions that are not excluded, less any point an excluded one has."""
    pairs: list[Pair] = []
    held = held_points(bank, exclude)
    for q in bank:
        if q.rubric is None or q.id in exclude:
            continue
        points = [p.text for p in q.rubric.key_points]
        for k, p in enumerate(q.rubric.key_points):
            if p.text in held:
                continue
            pairs += [(p.text, a, ENTAILS) for a in p.aliases]
            pairs += [(p.text, c.text, CONTRADICTS) for c in contrasts(p.text)]
            if len(points) > 1 and points[(k + 1) % len(points)] not in held:
                pairs.append((p.text, points[(k + 1) % len(points)], OTHER))
        wrong = [m.text for m in q.rubric.misconceptions] + list(q.mistakes)
        for text, (k, sim) in zip(wrong, _closest(encoder, points, wrong), strict=True):
            if sim >= 0.4 and points[k] not in held:
                pairs.append((points[k], text, CONTRADICTS))
        said = split_sentences(q.short_answer or "")
        for text, (k, sim) in zip(said, _closest(encoder, points, said), strict=True):
            if sim >= 0.55 and points[k] not in held:
                pairs.append((points[k], text, ENTAILS))
    return pairs


def answer_pairs(answers: list[LabelledAnswer], bank, encoder, held: frozenset[str] = frozenset()) -> list[Pair]:
    """Clause-level pairs from labelled answers: each clause with its closest key point (never one in ``held``)."""
    pairs: list[Pair] = []
    for a in answers:
        right = a.kind in _RIGHT_KINDS and a.label != "incorrect"
        wrong = a.kind in _WRONG_KINDS and a.label == "incorrect"
        if not (right or wrong):
            continue
        points = [p.text for p in bank[a.question].rubric.key_points]
        clauses = [c.text for c in split_clauses(a.text)]
        for text, (k, sim) in zip(clauses, _closest(encoder, points, clauses), strict=True):
            if sim >= 0.45 and points[k] not in held:
                pairs.append((points[k], text, ENTAILS if right else CONTRADICTS))
    return pairs


def _lower_states(model: Verifier, pairs: list[Pair], batch_size: int) -> list[Tensor]:
    """The frozen layers' output (T, D) for every pair, computed once (they do not change in training)."""
    states = []
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start : start + batch_size]
        ids, types, mask = model.tokenize([b[0] for b in batch], [b[1] for b in batch])
        hidden = model.lower(ids, types, mask)  # (B, T, D)
        states += [hidden[i, : int(mask[i].sum())] for i in range(len(batch))]
    return states


def train(pairs: list[Pair], epochs: int, batch_size: int = 32) -> Verifier:
    """Fine-tune the top layer and the head with class-balanced cross-entropy; fixed seed."""
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    encoder = default_embedder()
    for p in encoder.model.parameters():
        p.requires_grad_(False)
    model = Verifier(encoder)
    states = _lower_states(model, pairs, batch_size)
    counts = Counter(label for _, _, label in pairs)
    weights = torch.tensor([len(pairs) / (len(LABELS) * max(counts[i], 1)) for i in range(len(LABELS))])
    optimizer = torch.optim.AdamW(
        [{"params": model.top.parameters(), "lr": 3e-4}, {"params": model.head.parameters(), "lr": 3e-3}],
        weight_decay=0.01,
    )
    model.train()
    for epoch in range(epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        total = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            hidden = nn.utils.rnn.pad_sequence([states[i] for i in rows], batch_first=True)  # (B, T, D)
            lengths = torch.tensor([len(states[i]) for i in rows])
            mask = (torch.arange(hidden.shape[1])[None] < lengths[:, None]).long()  # (B, T)
            logits = model.upper(hidden, mask)
            loss = F.cross_entropy(logits, torch.tensor([pairs[i][2] for i in rows]), weight=weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        print(f"epoch {epoch + 1}: loss {total / len(pairs):.4f}", flush=True)
    return model.eval()


def main() -> None:
    from safetensors.torch import save_file

    from tfdojo.practice import load_bank

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (more spin on a shared machine)")
    parser.add_argument("--answers", type=Path, default=ANSWERS)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bank = load_bank()
    calibration, held_out = split_halves(load_labelled_answers(args.answers))
    encoder = default_embedder()
    exclude = {a.question for a in held_out}
    held = frozenset(held_points(bank, exclude))
    for_verifier, _ = split_calibration(calibration)
    pairs = bank_pairs(bank, exclude, encoder) + answer_pairs(for_verifier, bank, encoder, held)
    print(f"{len(pairs)} pairs: {dict(Counter(LABELS[label] for _, _, label in pairs))}", flush=True)
    model = train(pairs, args.epochs)
    save_file({k: v.half().contiguous() for k, v in model.trained_state().items()}, str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
