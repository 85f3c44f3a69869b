"""The free-text grader: clause splitting and polarity, the decision rules (with a bag-of-words embedder whose
similarities are computed by hand), and the real MiniLM grader on hand-written answers and on the labelled set."""

from __future__ import annotations

from pathlib import Path

import grading_support
import pytest

from tfdojo.practice import Grade, Rubric, grade_free_text
from tfdojo.practice.grading import Thresholds, split_clauses
from tfdojo.practice.grading.agreement import cohen_kappa, load_labelled_answers, split_halves
from tfdojo.practice.grading.salad import salad_terms
from tfdojo.practice.grading.words import contains_phrase, content_stems, stem

ANSWERS = Path(__file__).parents[2] / "bench" / "data" / "grading_answers.toml"

SCALING = Rubric.from_dict(
    {
        "key_points": [
            {
                "text": "The dot product of q and k has variance that grows with the head dimension d",
                "weight": 2,
                "aliases": ["variance d", "variance grows with d"],
            },
            {"text": "Large logits saturate the softmax into a near one-hot distribution", "aliases": ["one-hot"]},
            {
                "text": "Saturated softmax has vanishing gradients, which slows learning",
                "aliases": ["vanishing gradients"],
            },
        ],
        "misconceptions": [
            {
                "text": "The scaling normalises the attention output vectors to unit length",
                "aliases": ["normalize the output"],
                "feedback": "The scale acts on the logits before the softmax, not on the output.",
            },
            "Dividing by the square root makes attention faster",
        ],
    }
)

minilm = grading_support.minilm  # the shared fixture
BagOfWords = grading_support.BagOfWords


# --- clause splitting and polarity (no model)


def test_sentences_split_but_abbreviations_and_decimals_do_not():
    texts = [c.text for c in split_clauses("Use e.g. a 0.5 scale. Then normalise it!\n- a bullet point here")]
    assert texts == ["Use e.g. a 0.5 scale", "Then normalise it", "a bullet point here"]


def test_semicolons_and_joined_clauses_split_but_noun_lists_stay_whole():
    assert [c.text for c in split_clauses("The scores grow; the softmax saturates, but training continues.")] == [
        "The scores grow",
        "the softmax saturates",
        "but training continues",
    ]
    assert len(split_clauses("The dot product of queries and keys grows with d.")) == 1
    assert len(split_clauses("The logits grow and the gradients vanish.")) == 2


def test_each_clause_keeps_its_own_negation():
    clauses = split_clauses("The variance does not grow with d, but the softmax saturates; it never learns.")
    assert [(c.negated, c.cue) for c in clauses] == [(True, "not"), (False, None), (True, "never")]
    assert split_clauses("The cache isn't needed any more.")[0].cue == "n't"
    assert split_clauses("The cache is no longer needed.")[0].cue == "no longer"


def test_contrast_denies_the_second_part_only():
    clauses = split_clauses("It scales the logits rather than the outputs, and it keeps the variance at one.")
    assert [(c.text, c.negated) for c in clauses] == [
        ("It scales the logits", False),
        ("the outputs", True),
        ("and it keeps the variance at one", False),
    ]
    assert [(c.text, c.negated) for c in split_clauses("The scale acts on the logits, not on the output.")] == [
        ("The scale acts on the logits", False),
        ("on the output", True),
    ]


def test_conditions_purposes_and_not_only_do_not_negate():
    assert not split_clauses("If we did not scale, the softmax would saturate.")[0].negated
    purpose = split_clauses("Divide by the root of d, so that the softmax does not saturate.")
    assert [c.negated for c in purpose] == [False, False]
    assert not split_clauses("It is not only faster but also more stable.")[0].negated
    assert split_clauses("So the variance does not matter.")[0].negated  # a sentence that opens with So is a claim


def test_a_sentence_opening_with_so_that_is_a_purpose_not_a_denial():
    """Regression: "So that …" opening a sentence was read as a negated claim (docs/grading.md, held-out half)."""
    assert not split_clauses("So that the model cannot see the token it has to predict.")[0].negated
    assert not split_clauses("In order to keep the softmax from saturating, divide by the root of d.")[0].negated
    assert split_clauses("Keeping the variance fixed does not matter.")[0].negated


def test_blank_answer_has_no_clauses():
    assert split_clauses("  \n ") == []


# --- words, aliases, keyword salad (no model)


def test_stem_meets_simple_inflections_and_spellings():
    assert {stem(w) for w in ("saturates", "saturated", "saturating", "saturate")} == {"saturat"}
    assert stem("normalize") == stem("normalises")
    assert stem("stopping") == stem("stop")


def test_alias_matches_whole_words_case_and_inflection_insensitively():
    assert contains_phrase("Then the Softmax Saturated quickly", "softmax saturates")
    assert contains_phrase("the variance of the dot-product", "variance of the dot product")
    assert not contains_phrase("you must ask the model", "mask")
    assert not contains_phrase("variance grows", "variance grows with d")


def test_keyword_salad_is_a_list_of_rubric_terms_without_a_claim():
    vocabulary = content_stems([p.text for p in SCALING.key_points])
    assert salad_terms("variance, dot product, softmax saturation, vanishing gradients, head dimension", vocabulary)
    assert salad_terms("softmax saturation variance gradients", vocabulary)
    assert not salad_terms("The variance of the dot product grows, so the softmax saturates.", vocabulary)
    assert not salad_terms("Paris, London, Rome, Madrid", vocabulary)  # not rubric terms: off-topic, not salad


def test_a_terse_answer_that_relates_its_terms_is_not_salad():
    """Fragments with linking words or relation signs state something: a terse answer, not a list of terms."""
    vocabulary = content_stems([p.text for p in SCALING.key_points])
    assert not salad_terms("variance grows with d; softmax saturated, tiny gradients, so scale by 1/√d", vocabulary)
    assert not salad_terms("variance: d, softmax: saturated, gradients: vanishing, fix: divide by √d", vocabulary)
    assert not salad_terms("variance ∝ d, softmax → one-hot, gradients → 0, head dimension d", vocabulary)
    assert salad_terms("variance, softmax and saturation, vanishing gradients, head dimension", vocabulary)


def test_rubric_from_documented_dict_form():
    rubric = Rubric.from_dict(
        {
            "key_points": [{"text": "a point", "weight": 2, "aliases": ["pt"]}, {"text": "another"}],
            "misconceptions": ["bad idea"],
        }
    )
    assert rubric.total_weight == 3.0
    assert rubric.key_points[0].aliases == ("pt",)
    assert rubric.misconceptions[0].text == "bad idea" and rubric.misconceptions[0].feedback == ""


def test_cohen_kappa_matches_a_hand_computed_value():
    # p_o = 3/4; p_e = (2*1 + 1*2 + 1*1) / 16 = 5/16; kappa = (3/4 - 5/16) / (1 - 5/16) = 7/11
    a = ["correct", "correct", "partial", "incorrect"]
    b = ["correct", "partial", "partial", "incorrect"]
    assert cohen_kappa(a, b) == pytest.approx(7 / 11)
    assert cohen_kappa(a, a) == 1.0


def test_labelled_set_split_is_by_question_and_balanced():
    answers = load_labelled_answers(ANSWERS)
    calibration, held_out = split_halves(answers)
    assert len(answers) >= 300
    calibration_ids, held_ids = {a.question for a in calibration}, {a.question for a in held_out}
    assert not calibration_ids & held_ids
    assert abs(len(calibration_ids) - len(held_ids)) <= 1 and len(calibration_ids | held_ids) >= 40


# --- decision rules with a bag-of-words embedder (similarity = cosine of word counts, computable by hand)


SIMPLE = Rubric.from_dict(
    {
        "key_points": [{"text": "alpha beta gamma"}, {"text": "delta epsilon zeta"}],
        "misconceptions": [{"text": "omega psi chi", "feedback": "Omega is not involved."}],
    }
)
STRICT = Thresholds(point=0.6, margin=0.0, misconception=0.6, correct=0.75, partial=0.25)


def test_empty_answer_is_incorrect_without_a_model_call():
    embedder = BagOfWords()
    grade = grade_free_text(SIMPLE, "   ", embedder=embedder)
    assert (grade.verdict, grade.score, embedder.calls) == ("incorrect", 0.0, 0)
    assert "No answer" in grade.feedback and len(grade.missed) == 2


def test_points_covered_by_similar_clauses_give_the_weighted_score():
    grade = grade_free_text(
        SIMPLE, "alpha beta gamma are here; delta epsilon zeta follow.", embedder=BagOfWords(), thresholds=STRICT
    )
    # cos("alpha beta gamma are here", "alpha beta gamma") = 3 / sqrt(5 * 3) = 0.77 >= 0.6
    assert grade.verdict == "correct" and grade.score == 1.0
    assert grade.covered[0].similarity == pytest.approx(3 / 15**0.5, abs=1e-6)


def test_a_negated_clause_makes_its_point_uncertain_never_covered():
    grade = grade_free_text(
        SIMPLE, "alpha beta gamma does not hold; delta epsilon zeta do.", embedder=BagOfWords(), thresholds=STRICT
    )
    assert [p.point.text for p in grade.uncertain] == ["alpha beta gamma"]
    assert [p.point.text for p in grade.covered] == ["delta epsilon zeta"]
    assert grade.score == 0.5 and grade.verdict == "uncertain" and grade.shown == "partial"
    assert "seems to deny" in grade.feedback


def test_a_stated_misconception_is_flagged_with_its_feedback_and_costs_a_level():
    answer = "alpha beta gamma is here; delta epsilon zeta is too; omega psi chi is also."
    grade = grade_free_text(SIMPLE, answer, embedder=BagOfWords(), thresholds=STRICT)
    assert [m.misconception.text for m in grade.misconceptions] == ["omega psi chi"]
    assert "omega is not involved" in grade.feedback.lower()
    assert grade.score == 1.0 and grade.verdict == "partial"


def test_denying_a_misconception_does_not_trigger_it():
    grade = grade_free_text(
        SIMPLE, "alpha beta gamma; omega psi chi is not true.", embedder=BagOfWords(), thresholds=STRICT
    )
    assert grade.misconceptions == ()


def test_rubric_embeddings_are_computed_once_per_rubric():
    embedder = BagOfWords()
    grade_free_text(SIMPLE, "it is alpha beta gamma", embedder=embedder)
    grade_free_text(SIMPLE, "it is delta epsilon zeta", embedder=embedder)
    assert embedder.calls == 3  # the rubric once, then one batch per answer


# --- the real grader (MiniLM)


def point_texts(matches) -> list[str]:
    return [m.point.text for m in matches]


@pytest.mark.slow
def test_minilm_credits_a_paraphrase(minilm):
    answer = (
        "Summing d products of unit-variance numbers gives a score whose spread scales with the head size. "
        "Very big scores make the softmax put almost all its weight on one key, "
        "and then hardly any gradient flows back through it."
    )
    grade = grade_free_text(SCALING, answer, embedder=minilm)
    assert grade.score == 1.0 and len(grade.covered) == 3, grade.feedback  # every point credited
    assert not any(m.by_alias for m in grade.covered)  # credited by meaning, not by a listed phrase
    assert grade_free_text(SCALING, answer, embedder=minilm, head=False).shown == "correct"
    # Known failure of the verdict head (docs/grading.md, failure cases): its clauses reach the points at 0.38-0.58
    # only, and it shows this paraphrase partial (P(correct) 0.51); never incorrect.
    assert grade.shown != "incorrect"


@pytest.mark.slow
def test_minilm_does_not_credit_a_negated_key_point(minilm):
    grade = grade_free_text(SCALING, "The variance of q·k does not grow with the head dimension d.", embedder=minilm)
    assert SCALING.key_points[0].text not in point_texts(grade.covered)
    assert grade.shown != "correct"


@pytest.mark.slow
def test_minilm_flags_a_misconception_with_its_feedback(minilm):
    grade = grade_free_text(SCALING, "The scaling normalizes the output of attention to unit length.", embedder=minilm)
    assert [m.misconception.text for m in grade.misconceptions] == [SCALING.misconceptions[0].text]
    assert "acts on the logits" in grade.feedback and grade.verdict == "incorrect"


@pytest.mark.slow
def test_minilm_keyword_salad_and_off_topic_fail(minilm):
    salad = grade_free_text(SCALING, "variance, dot product, softmax, one-hot, vanishing gradients", embedder=minilm)
    assert salad.verdict == "incorrect" and salad.keyword_salad
    off_topic = grade_free_text(SCALING, "Paris is the capital of France and has many museums.", embedder=minilm)
    assert off_topic.verdict == "incorrect" and off_topic.covered == ()


@pytest.mark.slow
def test_minilm_alias_match_credits_the_point(minilm):
    grade = grade_free_text(SCALING, "Without it, you get vanishing gradients.", embedder=minilm)
    match = next(m for m in grade.covered if m.point.text == SCALING.key_points[2].text)
    assert match.by_alias and isinstance(grade, Grade)


@pytest.mark.slow
def test_minilm_agreement_on_the_held_out_half_stays_above_its_floor(minilm):
    from tfdojo.practice import load_bank

    bank = load_bank()
    _, held_out = split_halves(load_labelled_answers(ANSWERS))
    missing = sorted({a.question for a in held_out} - {q.id for q in bank})
    assert not missing, f"labelled answers refer to questions no longer in the bank: {missing}"
    shown = [grade_free_text(bank[a.question].rubric, a.text, embedder=minilm).shown for a in held_out]
    labels = [a.label for a in held_out]
    false_passes = sum(s == "correct" for s, label in zip(shown, labels, strict=True) if label == "incorrect")
    assert cohen_kappa(labels, shown) >= 0.50  # measured 0.516 (docs/grading.md)
    assert false_passes / labels.count("incorrect") <= 0.02  # measured 0.0 %
