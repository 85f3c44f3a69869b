"""Scheduling: grades to FSRS ratings, stable card ids, and cards that replaying the history rebuilds exactly."""

from datetime import UTC, datetime, timedelta

import pytest
from fsrs import Rating, State

from tfdojo.practice.scheduler import SpacedRepetition, card_id_for, effective_verdict, rating_for

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def test_card_ids_are_stable_positive_and_distinct():
    ids = [f"question-{i}" for i in range(2000)]
    cards = [card_id_for(q) for q in ids]
    assert cards == [card_id_for(q) for q in ids]
    assert len(set(cards)) == len(ids)
    assert all(0 < c < 2**63 for c in cards)  # a SQLite INTEGER


@pytest.mark.parametrize(
    ("verdict", "cold", "seconds", "override", "rating"),
    [
        ("incorrect", True, 10, None, Rating.Again),
        ("partial", True, 10, None, Rating.Hard),
        ("close", False, 10, None, Rating.Hard),
        ("uncertain", False, 10, None, Rating.Hard),
        ("correct", False, 10, None, Rating.Good),  # not cold
        ("correct", True, 200, None, Rating.Good),  # cold but slow (expected 300 s, fast is ≤ 150 s)
        ("correct", True, 150, None, Rating.Easy),  # cold and fast
        ("incorrect", True, 10, "knew", Rating.Easy),  # "I knew it" counts as correct
        ("correct", True, 10, "didnt", Rating.Again),  # "I didn't" counts as incorrect
        ("partial", False, 10, "knew", Rating.Good),
    ],
)
def test_grades_map_to_ratings(verdict, cold, seconds, override, rating):
    assert rating_for(verdict, cold=cold, seconds=seconds, expected_seconds=300, override=override) == rating


def test_override_replaces_the_verdict():
    assert effective_verdict("incorrect", "knew") == "correct"
    assert effective_verdict("correct", "didnt") == "incorrect"
    assert effective_verdict("partial", None) == "partial"


def test_first_reviews_follow_fsrs_learning_steps():
    sr = SpacedRepetition()
    new = sr.new_card("kv-cache", T0)
    assert new.card_id == card_id_for("kv-cache") and new.due == T0
    again = sr.review(new, Rating.Again, T0)
    good = sr.review(new, Rating.Good, T0)
    easy = sr.review(new, Rating.Easy, T0)
    # FSRS-6 default learning steps are 1 min and 10 min; Easy graduates straight to review
    assert again.due - T0 == timedelta(minutes=1)
    assert good.due - T0 == timedelta(minutes=10)
    assert easy.state == State.Review and easy.due - T0 >= timedelta(days=1)


def test_better_ratings_give_longer_intervals():
    sr = SpacedRepetition()
    card = sr.new_card("q", T0)
    for _ in range(3):
        card = sr.review(card, Rating.Good, card.due)
    when = card.due
    intervals = [sr.review(card, rating, when).due - when for rating in Rating]
    assert intervals == sorted(intervals) and len(set(intervals)) == 4


def test_replay_rebuilds_the_live_card_whatever_the_input_order():
    sr = SpacedRepetition()
    history = [(T0, Rating.Good), (T0 + timedelta(hours=1), Rating.Hard), (T0 + timedelta(days=3), Rating.Easy)]
    live = sr.new_card("q", T0)
    for when, rating in history:
        live = sr.review(live, rating, when)
    assert sr.replay("q", reversed(history)).to_dict() == live.to_dict()
    assert sr.replay("q", []) is None
