"""Splitting a free-text answer into clauses, each with its polarity, so every claim is matched on its own.

    answer -> sentences (., !, ?, new lines, bullets) -> clauses (; : and the joining words below) -> negated?

A clause is *negated* when a negation cue ("not", "n't", "never", "no longer", …) sits in its main part. Two places
do not count, because there the negation does not deny the clause's claim:

- a leading condition: "if we did not scale, the softmax would saturate" (the part before the first comma);
- a purpose clause after another clause: "…, so that the softmax does not saturate" (it names the harm the mechanism
  prevents), and an "and …" clause that continues it. A bare "so" is not a purpose: "so quantising won't help" is a
  claim.

"A rather than B", "A instead of B" and "A, not B" become two clauses, the second negated. When the sentence opens
with the contrast ("Instead of recomputing the keys, we store them"), a pronoun in the affirmed part stands for the
denied part's object, which is put in its place ("we store the keys").

A key point may itself deny something, with a cue or with a privative verb ("RMSNorm drops the bias", "caching
avoids recomputing the prefix"): an answer that says so with a negation ("no bias") agrees with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tfdojo.practice.grading.words import has_claim_verb

# Abbreviations whose full stop does not end a sentence.
_ABBREVIATIONS = re.compile(r"\b(e\.g|i\.e|etc|vs|cf|approx|resp|fig|eq|al)\.", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n+\s*(?:[-*•]|\d+[.)])?\s*")
# Always a clause boundary: semicolons, colons, dashes between words, and a comma before a joining word.
_HARD_BOUNDARY = re.compile(
    r"\s*[;:]\s+|\s+[-–—]{1,2}\s+|,\s+(?=(?:and|but|so|yet|or|whereas|while|because|since|which|hence|thus)\b)",
    re.IGNORECASE,
)
# A boundary only when both sides state something (a verb on each side): "queries and keys" stays whole.
_SOFT_BOUNDARY = re.compile(r"\s+(?=(?:and|but|so|yet|or|whereas|because|since|hence|thus)\s)", re.IGNORECASE)
# "A rather than B", "A instead of B", "A, not B": B is denied, up to the next comma.
_CONTRAST = re.compile(
    r",?\s*\b(?P<cue>rather than|instead of)\b\s*|,\s+(?P<not>not)\s+(?!only\b|just\b|merely\b)", re.IGNORECASE
)
# "stays the same" and "unchanged" deny a change: "the KV cache stays the same size" denies "sharing shrinks it".
_NEGATION = re.compile(
    r"\b(?:no longer|not|no|never|none|nothing|neither|nor|cannot|fails? to|failed to|unchanged|"
    r"(?:stays?|stayed|remains?|remained) the same)\b|n[’']t\b",
    re.IGNORECASE,
)
# Phrases that contain a cue but do not negate: "not only … but also", "no matter", "whether or not".
_NOT_NEGATION = re.compile(
    r"\b(?:not only|not just|not merely|no matter|whether or not|if not|nothing but|no more than|no less than)\b",
    re.IGNORECASE,
)
# Verbs that state an absence: a key point built on one is a negative claim ("drops the bias" = "has no bias").
_PRIVATIVE = re.compile(
    r"\b(?:drop|drops|dropped|dropping|remove|removes|removed|removing|omit|omits|omitted|avoid|avoids|avoided|"
    r"avoiding|eliminate|eliminates|eliminated|discard|discards|discarded|lack|lacks|lacked)\b",
    re.IGNORECASE,
)
_PRONOUN = re.compile(r"\b(?:them|it)\b", re.IGNORECASE)
_GERUND = re.compile(r"^\s*\w+ing\s+", re.IGNORECASE)
_CONDITION = re.compile(r"^(?:if|when|whenever|unless|without|once|as long as)\b", re.IGNORECASE)
_CONTINUATION = re.compile(r"^(?:and|or|nor)\b", re.IGNORECASE)
_PURPOSE = re.compile(
    r"^(?:so that|such that|in order|to ensure|to make sure|so as to|which keeps|keeping)\b", re.IGNORECASE
)
# The purpose phrases that stay purposes when they open a sentence ("So that the model cannot peek.").
_OPENING_PURPOSE = re.compile(r"^(?:so that|in order to|so as to|to ensure|to make sure)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Clause:
    """One claim of an answer: its text, and whether it denies what its words say (with the cue that does)."""

    text: str
    negated: bool = False
    cue: str | None = None


def split_sentences(answer: str) -> list[str]:
    """The answer's sentences, split at . ! ? followed by a space, and at new lines and list bullets."""
    protected = _ABBREVIATIONS.sub(lambda m: m.group(0).replace(".", "\0"), answer.strip())
    parts = (p.replace("\0", ".").strip(" \t-*•") for p in _SENTENCE_END.split(protected))
    return [p for p in parts if p]


def is_purpose(text: str, *, opens_sentence: bool, after_purpose: bool) -> bool:
    """Whether a clause states a purpose: "so that …", "to ensure …" after another clause, or "and …" continuing one.

    A sentence that opens with an explicit purpose ("So that …", "In order to …") is one too; other openers are
    claims ("Keeping the variance fixed does not matter" denies something).
    """
    if opens_sentence:
        return bool(_OPENING_PURPOSE.match(text))
    return bool(_PURPOSE.match(text)) or (after_purpose and bool(_CONTINUATION.match(text)))


def negation_cue(text: str) -> str | None:
    """The negation cue in the main part of a clause (a leading "if …," condition does not count), or None."""
    main = text.split(",", 1)[1] if _CONDITION.match(text) and "," in text else text
    main = _NOT_NEGATION.sub(" ", main)
    found = _NEGATION.search(main)
    return found.group(0).lower() if found else None


def _soft_split(text: str) -> list[str]:
    """Split at a bare joining word only where both sides hold a verb (so noun lists stay whole)."""
    pieces: list[str] = []
    rest = text
    for match in reversed(list(_SOFT_BOUNDARY.finditer(text))):
        left, right = rest[: match.start()], rest[match.end() :]
        if has_claim_verb(left) and has_claim_verb(right):
            pieces.append(right)
            rest = left
    pieces.append(rest)
    return pieces[::-1]


def _resolve_pronoun(denied: str, rest: str) -> str:
    """ "we store them" after "Instead of recomputing the keys": the pronoun stands for the denied part's object."""
    target = _GERUND.sub("", denied, count=1).strip()
    return _PRONOUN.sub(target, rest, count=1) if target and target != denied.strip() else rest


def _contrast_clauses(text: str) -> list[Clause]:
    """'A rather than B' -> A as written, B negated (B runs to the next comma; what follows is affirmed again)."""
    clauses: list[Clause] = []
    position, cue = 0, None
    for match in [*_CONTRAST.finditer(text), None]:
        segment = text[position : match.start() if match else len(text)]
        if cue is None:
            clauses.append(Clause(segment))
        else:
            denied, _, rest = segment.partition(",")
            if not any(c.text.strip(" ,") for c in clauses):  # the sentence opened with the contrast
                rest = _resolve_pronoun(denied, rest)
            clauses += [Clause(denied, negated=True, cue=cue), Clause(rest)]
        if match:
            position, cue = match.end(), (match.group("cue") or match.group("not")).lower()
    return [c for c in clauses if c.text.strip(" ,")]


def states_negative(text: str) -> bool:
    """Whether a statement (a rubric's key point) is itself a negative claim: its first clause is negated or is
    built on a privative verb ("drops", "avoids", "removes")."""
    clauses = split_clauses(text)
    return bool(clauses) and (clauses[0].negated or bool(_PRIVATIVE.search(clauses[0].text)))


def split_clauses(answer: str) -> list[Clause]:
    """The answer's clauses in order, each with its polarity; an empty or blank answer gives no clauses."""
    clauses: list[Clause] = []
    for sentence in split_sentences(answer):
        first, purpose = len(clauses), False
        for hard in _HARD_BOUNDARY.split(sentence):
            for soft in _soft_split(hard):
                for clause in _contrast_clauses(soft):
                    text = clause.text.strip(" ,.;:!?")
                    if not re.search(r"\w", text):
                        continue
                    purpose = is_purpose(text, opens_sentence=len(clauses) == first, after_purpose=purpose)
                    cue = clause.cue or (None if purpose else negation_cue(text))
                    clauses.append(Clause(text, negated=cue is not None, cue=cue))
    return clauses
