"""Agreement of the free-text grader with human labels, and its latency, on bench/data/grading_answers.toml.

    .venv/bin/python bench/grading.py               # grade every answer with the default thresholds, write JSON
    .venv/bin/python bench/grading.py --calibrate   # sweep the thresholds on the calibration half only

Reported on the held-out half (questions never used to calibrate), on the calibration half and on all answers:
Cohen's kappa on the 3-way label the trainer shows (``Grade.shown``: an "uncertain" verdict is shown as the grade its
credited points alone earn),
the false-pass rate (answers labelled incorrect that the grader calls correct), accuracy per kind of answer and
the p50 / p95 latency per answer (wall clock, and CPU time of this process, which other processes on a shared machine
do not inflate) once the model is loaded and the rubric embedded: the trainer embeds a question's rubric when it shows
the question (``warm_rubric``); that cost is reported on its own line.
Torch runs on one thread by default: on the 2 shared cores of the dev machine, two OpenMP threads spin against the
other processes and are ~10x slower per answer.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from tfdojo.practice import Grade, Rubric, grade_free_text, load_bank
from tfdojo.practice.grading.agreement import (
    KINDS,
    LABELS,
    LabelledAnswer,
    cohen_kappa,
    load_labelled_answers,
    split_halves,
)
from tfdojo.practice.grading.embedder import Embedder, default_embedder
from tfdojo.practice.grading.evidence import collect_evidence
from tfdojo.practice.grading.free_text import DEFAULT_THRESHOLDS, Thresholds, decide, level, screen, warm_rubric

HERE = Path(__file__).parent
ANSWERS = HERE / "data" / "grading_answers.toml"
RESULTS = HERE / "results"


def shown(grade: Grade, t: Thresholds) -> str:
    """The label the trainer shows for a grade, recomputed under the verdict thresholds of ``t``."""
    return grade.shown if grade.keyword_salad else level(grade.score, bool(grade.misconceptions), t)


def machine() -> str:
    """The CPU model and core count, for the report."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())
    return f"{model}, {os.cpu_count()} cores visible, {platform.system()}"


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of some durations, in milliseconds."""
    ordered = sorted(seconds)
    return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(
    answers: Sequence[LabelledAnswer], shown_labels: Sequence[str], latencies: Sequence[float], cpu: Sequence[float]
) -> dict:
    """Kappa, false passes, accuracy overall and per kind, confusion matrix, latency percentiles."""
    labels = [a.label for a in answers]
    wrong = [s for a, s in zip(answers, shown_labels, strict=True) if a.label == "incorrect"]
    per_kind = {}
    for kind in KINDS:
        pairs = [(a.label, s) for a, s in zip(answers, shown_labels, strict=True) if a.kind == kind]
        if pairs:
            per_kind[kind] = {"n": len(pairs), "accuracy": sum(x == y for x, y in pairs) / len(pairs)}
    confusion = {
        lab: {s: sum(1 for x, y in zip(labels, shown_labels, strict=True) if x == lab and y == s) for s in LABELS}
        for lab in LABELS
    }
    return {
        "n": len(answers),
        "questions": len({a.question for a in answers}),
        "kappa": cohen_kappa(labels, shown_labels),
        "accuracy": sum(x == y for x, y in zip(labels, shown_labels, strict=True)) / len(labels),
        "false_pass_rate": sum(s == "correct" for s in wrong) / max(len(wrong), 1),
        "per_kind": per_kind,
        "confusion_label_by_shown": confusion,
        "latency_ms_p50": percentile_ms(latencies, 0.5),
        "latency_ms_p95": percentile_ms(latencies, 0.95),
        "cpu_ms_p50": percentile_ms(cpu, 0.5),
        "cpu_ms_p95": percentile_ms(cpu, 0.95),
    }


def calibrate(answers: Sequence[LabelledAnswer], bank, embedder: Embedder) -> list[tuple[float, float, Thresholds]]:
    """Every threshold combination's (kappa, false-pass rate) on the given answers, best kappa first.

    Combinations whose false-pass rate exceeds 5 % are dropped. The evidence (clauses, similarities) is computed
    once per answer; the similarity thresholds need a new decision, the score thresholds only the scores.
    """
    screened = [screen(bank[a.question].rubric, a.text) for a in answers]
    evidence = [
        collect_evidence(bank[a.question].rubric, a.text, embedder) if g is None else None
        for a, g in zip(answers, screened, strict=True)
    ]
    labels = [a.label for a in answers]
    results = []
    similarity_grid = itertools.product(
        [x / 100 for x in range(30, 61, 2)], [0.0, 0.03, 0.06, 0.1, 1.0], [x / 100 for x in range(55, 86, 5)]
    )
    for point, margin, miscon in similarity_grid:
        base = Thresholds(point=point, margin=margin, misconception=miscon)
        grades = [g or decide(e, base) for g, e in zip(screened, evidence, strict=True)]
        for correct, partial in itertools.product(
            [x / 100 for x in range(50, 91, 5)], [x / 100 for x in range(10, 51, 5)]
        ):
            if partial > correct:
                continue
            t = replace(base, correct=correct, partial=partial)
            shown_labels = [shown(g, t) for g in grades]
            wrong = [s for lab, s in zip(labels, shown_labels, strict=True) if lab == "incorrect"]
            false_pass = sum(s == "correct" for s in wrong) / max(len(wrong), 1)
            if false_pass <= 0.05:
                results.append((cohen_kappa(labels, shown_labels), false_pass, t))
    return sorted(results, key=lambda r: -r[0])


def print_table(report: dict) -> None:
    """One row per split, then accuracy per kind."""
    print(
        f"{'split':<11}{'n':>5}{'qs':>5}{'kappa':>8}{'acc':>7}{'false pass':>12}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'cpu p95':>9}"
    )
    for name, r in report["splits"].items():
        print(
            f"{name:<11}{r['n']:>5}{r['questions']:>5}{r['kappa']:>8.3f}{r['accuracy']:>7.3f}"
            f"{r['false_pass_rate']:>12.3f}{r['latency_ms_p50']:>9.1f}{r['latency_ms_p95']:>9.1f}{r['cpu_ms_p95']:>9.1f}"
        )
    print(
        f"rubric embedding when a question is shown: p50 {report['rubric_warm_ms_p50']:.1f} ms, "
        f"p95 {report['rubric_warm_ms_p95']:.1f} ms"
    )
    print("\naccuracy per kind (held-out / all):")
    for kind in KINDS:
        held, every = report["splits"]["held-out"]["per_kind"][kind], report["splits"]["all"]["per_kind"][kind]
        print(f"  {kind:<11}{held['accuracy']:>7.3f} ({held['n']:>3}){every['accuracy']:>8.3f} ({every['n']:>3})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=Path, default=ANSWERS)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; see the module docstring)")
    parser.add_argument("--calibrate", action="store_true", help="sweep thresholds on the calibration half")
    parser.add_argument("--out", type=Path, default=RESULTS / "grading.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bank = load_bank()
    answers = load_labelled_answers(args.answers)
    unknown = sorted({a.question for a in answers} - {q.id for q in bank})
    if unknown:
        raise SystemExit(f"{args.answers}: these question ids are not in the bank: {unknown}")
    calibration, held_out = split_halves(answers)

    started = time.perf_counter()
    encoder = default_embedder()
    load_s = time.perf_counter() - started
    if args.calibrate:
        ranked = calibrate(calibration, bank, encoder)
        for kappa, false_pass, t in ranked[:10]:
            print(f"kappa {kappa:.3f}  false pass {false_pass:.3f}  {t}")
        return

    grade_free_text(Rubric.from_dict({"key_points": [{"text": "warm-up"}]}), "a first forward pass", embedder=encoder)
    rubric_s = []
    for question in dict.fromkeys(a.question for a in answers):  # what the trainer does when it shows a question
        t0 = time.perf_counter()
        warm_rubric(bank[question].rubric, embedder=encoder)
        rubric_s.append(time.perf_counter() - t0)
    shown_labels, latencies, cpu_times, graded = [], [], [], []
    for a in answers:
        t0, c0 = time.perf_counter(), time.process_time()
        g = grade_free_text(bank[a.question].rubric, a.text, embedder=encoder)
        latencies.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        shown_labels.append(g.shown)
        graded.append(g)
    index = {id(a): i for i, a in enumerate(answers)}

    def subset(part: Sequence[LabelledAnswer]) -> dict:
        rows = [index[id(a)] for a in part]
        return summarise(
            part, [shown_labels[i] for i in rows], [latencies[i] for i in rows], [cpu_times[i] for i in rows]
        )

    misgraded = [
        {
            "question": a.question,
            "kind": a.kind,
            "label": a.label,
            "verdict": g.verdict,
            "score": round(g.score, 3),
            "text": a.text,
        }
        for a, g, s in zip(answers, graded, shown_labels, strict=True)
        if s != a.label
    ]
    report = {
        "benchmark": "free-text grader vs human labels",
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "model_load_s": load_s,
        "rubric_warm_ms_p50": percentile_ms(rubric_s, 0.5),
        "rubric_warm_ms_p95": percentile_ms(rubric_s, 0.95),
        "uncertain_shown_as": "the grade of the credited points alone (Grade.shown)",
        "thresholds": asdict(DEFAULT_THRESHOLDS),
        "splits": {"held-out": subset(held_out), "calibration": subset(calibration), "all": subset(answers)},
        "misgraded": misgraded,
    }
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.out} ({len(misgraded)} mis-graded answers listed)")


if __name__ == "__main__":
    main()
