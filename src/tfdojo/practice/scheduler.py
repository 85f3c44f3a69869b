"""When to ask each question again: FSRS spaced repetition (Ye, Su & Cao, KDD 2022; the ``fsrs`` package).

A grade becomes an FSRS rating: incorrect → Again; partial, close or uncertain → Hard; correct → Good; correct
cold and fast (first try of a session, no hint, within half the expected time) → Easy. "I knew it" / "I didn't"
replaces the grader's verdict with correct / incorrect before the rating is chosen.

Fuzzing is off, so a card is a pure function of its review history: replaying a question's attempts (after an
import, or after an override) rebuilds exactly the card that live reviews produced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from fsrs import Card, Rating, Scheduler

Override = Literal["knew", "didnt"]
OVERRIDE_VERDICT: dict[str, str] = {"knew": "correct", "didnt": "incorrect"}
FAST_FRACTION = 0.5  # answered within this share of the question's expected minutes counts as fast


def card_id_for(question_id: str) -> int:
    """A stable positive card id from the question id (SHA-256, 56 bits: fits SQLite and JSON integers)."""
    return int.from_bytes(hashlib.sha256(question_id.encode()).digest()[:7], "big") + 1


def effective_verdict(verdict: str, override: str | None) -> str:
    """The verdict that counts: the user's override when given, else the grader's."""
    return OVERRIDE_VERDICT[override] if override else verdict


def rating_for(verdict: str, *, cold: bool, seconds: float, expected_seconds: float, override: str | None) -> Rating:
    """The FSRS rating for one attempt (see the module docstring for the mapping)."""
    counted = effective_verdict(verdict, override)
    if counted == "correct":
        fast = seconds <= FAST_FRACTION * expected_seconds
        return Rating.Easy if cold and fast else Rating.Good
    if counted == "incorrect":
        return Rating.Again
    return Rating.Hard


class SpacedRepetition:
    """FSRS with tfdojo's settings: target retention 0.9, no fuzzing; cards keyed by question id."""

    def __init__(self, desired_retention: float = 0.9) -> None:
        self._fsrs = Scheduler(desired_retention=desired_retention, enable_fuzzing=False)

    def new_card(self, question_id: str, now: datetime) -> Card:
        """A card never reviewed, due at ``now``."""
        return Card(card_id=card_id_for(question_id), due=now)

    def review(self, card: Card, rating: Rating, when: datetime) -> Card:
        """The card after one review with ``rating`` at ``when``."""
        updated, _log = self._fsrs.review_card(card, rating, review_datetime=when)
        return updated

    def recall(self, card: Card, now: datetime) -> float:
        """The probability of recalling the card's question at ``now`` (FSRS retrievability, 0–1)."""
        return float(self._fsrs.get_card_retrievability(card, current_datetime=now))

    def replay(self, question_id: str, reviews: Iterable[tuple[datetime, Rating]]) -> Card | None:
        """The card built from a question's reviews in time order; None when there are none."""
        card = None
        for when, rating in sorted(reviews, key=lambda review: review[0]):
            card = self.review(card or self.new_card(question_id, when), rating, when)
        return card
