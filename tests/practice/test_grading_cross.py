"""The cross-encoder and the cross stage: LoRA against its formula, the training pairs and their split by question,
the shipped weights (checksum, size, a clear error when corrupt), and the issue's examples on held-out questions."""

from __future__ import annotations

import hashlib
import json
import shutil

import grading_support
import pytest
import torch

from tfdojo.errors import BankError, CheckpointError
from tfdojo.practice import Rubric, load_bank
from tfdojo.practice.grading import train_cross
from tfdojo.practice.grading.cross_encoder import MANIFEST, RELATIONS, WEIGHTS, CrossEncoder
from tfdojo.practice.grading.cross_stage import read_answer
from tfdojo.practice.grading.evidence import collect_evidence
from tfdojo.practice.grading.free_text import decide
from tfdojo.practice.grading.lora import LoRALinear
from tfdojo.practice.grading.pairs import all_pairs, labelled_halves, load_written_pairs, split_pairs

minilm = grading_support.minilm  # the shared fixture


def test_lora_layer_is_its_formula_and_merges_to_the_same_function():
    """y = W x + b + (alpha / r) B A x, by hand in float64; the merged nn.Linear computes the same."""
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    lora = LoRALinear(base, rank=2, alpha=4.0)
    with torch.no_grad():
        lora.b.normal_()  # B starts at zero; give it values so the update shows
    x = torch.randn(3, 6)
    w, b, a, bb = (t.detach().double() for t in (base.weight, base.bias, lora.a, lora.b))
    expected = x.double() @ w.T + b + 2.0 * (x.double() @ a.T @ bb.T)
    torch.testing.assert_close(lora(x).double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lora.merged()(x).double(), expected, rtol=1e-5, atol=1e-5)
    assert not base.weight.requires_grad and lora.a.requires_grad


def test_training_pairs_never_include_a_held_out_question():
    split = split_pairs(all_pairs(load_bank()))
    calibration, held_out = labelled_halves()
    assert split.train and split.test
    assert not {p.question for p in split.train} & (calibration | held_out)
    assert {p.question for p in split.dev} <= calibration and {p.question for p in split.test} <= held_out


def test_a_compound_states_its_point_only_when_it_holds_a_written_sentence_of_that_point():
    bank = load_bank()
    written = load_written_pairs(bank)
    said: dict[tuple[str, str], set[str]] = {}
    for w in written:
        if w.relation == "states":
            said.setdefault((w.question, w.point), set()).add(w.sentence.rstrip(" .").lower())
    compounds = [p for p in all_pairs(bank) if p.source.startswith("auto:compound")]
    assert len(compounds) > 1000
    for p in compounds:
        text = p.sentence.lower()
        own = any(s in text for s in said[p.question, p.point])
        assert own == (p.relation == "states"), p
        parts = sum(s in text for (q, _), group in said.items() if q == p.question for s in group)
        assert parts >= 2, p  # two written sentences of the same question, joined


def test_train_cross_hands_only_training_questions_to_the_model(monkeypatch, minilm):
    """The script caches (and so trains on) the train part only; the held-out part is read after training."""
    seen = {}

    class Stop(Exception):
        pass

    def fake_cache(model, pairs, progress, name, batch=64):
        seen[name] = list(pairs)
        raise Stop

    monkeypatch.setattr(train_cross, "cache_lower", fake_cache)
    with pytest.raises(Stop):
        train_cross.main(["--threads", "1"])
    calibration, held_out = labelled_halves()
    assert seen["train"] and not {p.question for p in seen["train"]} & (calibration | held_out)


def test_a_run_cut_after_its_first_epoch_keeps_that_epochs_weights(monkeypatch, tmp_path, minilm):
    """train_cross saves after each finished epoch, marked unfinished; a run killed later leaves a loadable file."""

    class Killed(Exception):
        pass

    def killed_after_training(pairs, predicted):
        raise Killed

    monkeypatch.setattr(train_cross, "report", killed_after_training)  # dies after the last epoch, before its save
    out = tmp_path / "cut.safetensors"
    with pytest.raises(Killed):
        train_cross.main(["--epochs", "2", "--limit", "40", "--out", str(out)])
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["unfinished"] is True and [row["epoch"] for row in manifest["history"]] == [1]
    CrossEncoder.load(minilm, out)  # the checksum matches: the epoch's weights are whole


def test_a_malformed_pair_file_names_the_entry(tmp_path):
    (tmp_path / "x.toml").write_text(
        '[[pair]]\nquestion = "gqa-head-grouping"\npoint = 9\nlabel = "states"\nsentence = "s"\n'
    )
    with pytest.raises(BankError, match=r"x.toml: pair #1 has point 9 \(0..4\)"):
        load_written_pairs(load_bank(), tmp_path)
    (tmp_path / "x.toml").write_text(
        '[[pair]]\nquestion = "no-such-question"\npoint = 0\nlabel = "states"\nsentence = "s"\n'
    )
    with pytest.raises(BankError, match="not a bank question"):
        load_written_pairs(load_bank(), tmp_path)


class StubCross:
    """Stands in for the cross-encoder: a sentence states a point when it holds the point's first word, and
    contradicts it when it holds "not" as well."""

    def __init__(self) -> None:
        self.calls = []

    def probabilities(self, points, sentences):
        self.calls.append(list(zip(points, sentences, strict=True)))
        rows = []
        for p, s in zip(points, sentences, strict=True):
            word = p.split()[0].lower()
            says = word in s.lower()
            rows.append(
                [0.1, 0.8, 0.1]
                if says and " not " in f" {s.lower()} "
                else [0.9, 0.05, 0.05]
                if says
                else [0.05, 0.05, 0.9]
            )
        return torch.tensor(rows)


RUBRIC = Rubric.from_dict(
    {"key_points": [{"text": "Sharing shrinks the KV cache"}, {"text": "Grouping keeps quality close to MHA"}]}
)


def test_the_cross_stage_decides_points_and_why_says_so():
    embedder = grading_support.BagOfWords()
    answer = "Sharing heads makes the cache small. Grouping does not keep the quality."
    grade = decide(collect_evidence(RUBRIC, answer, embedder), cross=StubCross())
    why = grade.why()
    statuses = {p["point"]: p for p in why["points"]}
    assert statuses["Sharing shrinks the KV cache"]["status"] == "covered"
    assert statuses["Sharing shrinks the KV cache"]["decided_by"] == "cross-encoder"
    assert statuses["Grouping keeps quality close to MHA"]["status"] == "contradicted"
    assert statuses["Grouping keeps quality close to MHA"]["sentence"] == "Grouping does not keep the quality."
    assert why["decision"]["cross_encoder_pairs"] >= 2
    fast = decide(collect_evidence(RUBRIC, answer, embedder)).why()
    assert "cross_encoder_pairs" not in fast["decision"] and all("decided_by" not in p for p in fast["points"])


def test_appending_a_sentence_never_takes_a_cross_stage_credit_away():
    embedder = grading_support.BagOfWords()
    first = "Sharing heads makes the KV cache smaller."
    before = read_answer(collect_evidence(RUBRIC, first, embedder), first, StubCross())
    longer = first + " Grouping does not keep the quality of the KV cache. Sharing is not free."
    after = read_answer(collect_evidence(RUBRIC, longer, embedder), longer, StubCross())
    assert before.stated(0) and after.stated(0) and after.best_states(0)[0] >= before.best_states(0)[0]


# --- the shipped weights ---------------------------------------------------------------------------------------------


def test_the_shipped_weights_are_small_and_match_their_checksum():
    manifest = json.loads(MANIFEST.read_text())
    assert WEIGHTS.stat().st_size < 3_000_000
    assert hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() == manifest["sha256"]
    assert "none of the held-out half" in manifest["trained_on"]


def test_a_corrupt_weights_file_is_refused_with_a_clear_error(tmp_path, minilm):
    path = tmp_path / "cross_encoder.safetensors"
    shutil.copy(WEIGHTS, path)
    shutil.copy(MANIFEST, path.with_suffix(".json"))
    CrossEncoder.load(minilm, path)  # the copy loads
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is corrupt: its SHA-256"):
        CrossEncoder.load(minilm, path)
    path.write_bytes(WEIGHTS.read_bytes()[:1000])  # truncated, with a manifest that matches it
    manifest = json.loads(MANIFEST.read_text()) | {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    path.with_suffix(".json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        CrossEncoder.load(minilm, path)
    path.unlink()
    with pytest.raises(CheckpointError, match="train_cross"):
        CrossEncoder.load(minilm, path)


# Held-out questions only (agreement.split_halves): the cross-encoder never trained on their pairs.
ISSUE_EXAMPLES = [
    # issue 9: "the KV cache stays the same size" and "the KV cache stores the queries" are confident-wrong
    ("gqa-head-grouping", 2, "The KV cache stays the same size as with multi-head attention.", "contradicts"),
    (
        "encoder-decoder-inference-caching",
        1,
        "The cross-attention cache stores the queries of each step.",
        "contradicts",
    ),
    # terse and correct
    ("gqa-head-grouping", 0, "MQA = a single K and V for every query head.", "states"),
]
# Not read right, kept as a documented failure (docs/grading.md): "cache is smaller by the group factor" against
# "Sharing shrinks the KV cache by the ratio of query heads to key-value heads" reads as contradicts (0.93).


def test_the_shipped_cross_encoder_reads_the_issue_examples_on_held_out_questions(minilm):
    _, held_out = labelled_halves()
    bank = load_bank()
    cross = CrossEncoder.load(minilm)
    assert {q for q, *_ in ISSUE_EXAMPLES} <= held_out
    points = [bank[q].rubric.key_points[k].text for q, k, _, _ in ISSUE_EXAMPLES]
    probs = cross.probabilities(points, [s for _, _, s, _ in ISSUE_EXAMPLES])
    read = [RELATIONS[i] for i in probs.argmax(-1).tolist()]
    assert read == [want for *_, want in ISSUE_EXAMPLES], probs
