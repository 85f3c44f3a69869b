"""The drill's `w` shows how the label was reached (``Grade.why()["decision"]``): by the verdict head with its two
probabilities, or by the score cut-offs, and the stated errors that lowered it."""

import math

import grading_support
from drill_bank import write_bank
from typer.testing import CliRunner

from tfdojo.cli import app
from tfdojo.practice import Rubric, grade_free_text
from tfdojo.practice.grading import Thresholds
from tfdojo.practice.grading.head import FEATURES, VerdictHead

runner = CliRunner()
RUBRIC = Rubric.from_dict(
    {
        "key_points": [{"text": "alpha beta gamma", "weight": 2}, {"text": "delta epsilon zeta"}],
        "misconceptions": [{"text": "omega psi chi", "feedback": "Omega is not involved."}],
    }
)
STRICT = Thresholds(point=0.6, margin=0.0, misconception=0.6, correct=0.75, partial=0.25)
ANSWER = "alpha beta gamma is here; omega psi chi is too."  # one point covered, one misconception stated


def _head(partial_bias: float, correct_bias: float) -> VerdictHead:
    """A head whose probabilities are the logistic of its biases whatever the features."""
    n = len(FEATURES)
    zeros = (0.0,) * n
    return VerdictHead(FEATURES, zeros, (1.0,) * n, zeros + (partial_bias,), zeros + (correct_bias,), 0.5, 0.5, "t")


def _why_shown(tmp_path, monkeypatch, head: VerdictHead | None) -> str:
    """Answer one drill question with the real grader (word-count embeddings, ``head``), then press `w`."""

    def grade(rubric, answer):
        return grade_free_text(RUBRIC, answer, embedder=grading_support.BagOfWords(), thresholds=STRICT, head=head)

    monkeypatch.setattr("tfdojo.practice.grading.free_text.grade_free_text", grade)
    write_bank(tmp_path / "bank")
    opts = ["--data-dir", str(tmp_path / "data"), "--bank", str(tmp_path / "bank")]
    args = ["drill", "--id", "why-scale-scores", "--no-timer", *opts]
    result = runner.invoke(app, args, input=f"{ANSWER}\n\nw\n\n", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout[result.stdout.index("why this grade") :]


def test_w_shows_the_verdict_heads_probabilities_and_the_stated_error(tmp_path, monkeypatch):
    shown = _why_shown(tmp_path, monkeypatch, _head(2.0, -1.0))
    p_partial, p_correct = 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))  # 0.88, 0.27
    line = f"decided by the verdict head: P(at least partial) {p_partial:.2f}, P(correct) {p_correct:.2f}"
    assert f"{line} · 1 stated error lowered the label" in shown
    assert "omega psi chi" in shown  # the misconception behind that error is in the table above


def test_w_says_when_the_score_cut_offs_decided(tmp_path, monkeypatch):
    shown = _why_shown(tmp_path, monkeypatch, None)
    assert "decided by the score cut-offs · 1 stated error lowered the label" in shown
    assert "verdict head" not in shown


def _drill_real(tmp_path, *flags: str) -> str:
    """One bundled free-text question answered with the shipped grader (MiniLM), then `w`."""
    args = ["drill", "--id", "masking-before-softmax", "--no-timer", "--data-dir", str(tmp_path / "data"), *flags]
    answer = (  # the cross-encoder reads its second sentence as stating the key-axis point (P 0.90)
        "Add -inf to blocked logits pre-softmax; those keys get zero probability and the rest renormalise. "
        "Pad masks go on the key axis; an all-masked row gives NaN."
    )
    result = runner.invoke(app, args, input=f"{answer}\n\nw\n\n", env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.stdout[result.stdout.index("why this grade") :]


def test_drill_cross_reads_free_text_with_the_cross_encoder_and_w_says_so(tmp_path):
    shown = _drill_real(tmp_path, "--cross")
    assert "over the cross-encoder's reading of" in shown and "(point, sentence) pairs" in shown
    assert "(cross-encoder, P " in shown  # a point it decided, with its probability
    assert "cross-encoder" not in _drill_real(tmp_path / "fast")  # the default is the fast path alone
