"""Grading a coding submission: the static forbidden-API check, then the judge calling it in the sandbox."""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from tfdojo.practice.code.exercises import Exercise, load_exercise
from tfdojo.practice.code.forbidden import find_forbidden
from tfdojo.practice.code.sandbox import MB, Containment, SandboxLimits, SandboxRun, run_sandboxed

Verdict = Literal["passed", "failed", "error", "timeout", "memory", "forbidden", "killed"]
# When tests disagree, the verdict is the most serious outcome seen.
SEVERITY: tuple[Verdict, ...] = ("forbidden", "timeout", "memory", "killed", "error", "failed", "passed")


@dataclass(frozen=True)
class TestResult:
    """One hidden test: its name, whether it passed, and what went wrong."""

    __test__ = False  # not a pytest class

    name: str
    ok: bool
    message: str = ""


@dataclass(frozen=True)
class CodeGrade:
    """The outcome of grading one submission: a verdict, per-test results and feedback a person can act on."""

    exercise_id: str
    verdict: Verdict
    passed: bool
    tests: tuple[TestResult, ...]
    feedback: str
    seconds: float
    containment: Containment | None = None  # the layers that held the run and what they measured (None: not run)


def _grade(
    exercise: Exercise, verdict: Verdict, feedback: str, seconds: float, tests: Sequence[TestResult] = ()
) -> CodeGrade:
    return CodeGrade(exercise.id, verdict, verdict == "passed", tuple(tests), feedback, round(seconds, 3))


def static_grade(exercise: Exercise, source: str) -> CodeGrade | None:
    """The grade when the source does not parse or names a forbidden API; None when it may run."""
    try:
        violations = find_forbidden(source, exercise.forbidden)
    except SyntaxError as e:
        where = f" at line {e.lineno}" if e.lineno else ""
        return _grade(exercise, "error", f"syntax error{where}: {e.msg}; fix it and submit again", 0.0)
    if violations:
        return _grade(exercise, "forbidden", "; ".join(v.describe() for v in violations), 0.0)
    return None


def _from_result(exercise: Exercise, result: dict[str, Any], seconds: float) -> CodeGrade:
    """The grade from the judge's report on one submission (checked: the judge is ours, but be strict)."""
    load = result.get("load")
    if isinstance(load, dict):
        outcome = load.get("outcome") if load.get("outcome") in SEVERITY else "error"
        return _grade(exercise, outcome, str(load.get("message", "")), seconds)
    raw = [t for t in result.get("tests", []) if isinstance(t, dict)]
    tests = [TestResult(str(t.get("name")), t.get("outcome") == "passed", str(t.get("message", ""))) for t in raw]
    outcomes = {t.get("outcome") if t.get("outcome") in SEVERITY else "error" for t in raw} or {"error"}
    verdict = next(v for v in SEVERITY if v in outcomes)
    bad = [t for t in raw if t.get("outcome") != "passed"]
    if not raw:
        feedback = "the hidden tests did not run"
    elif not bad:
        feedback = f"all {len(tests)} hidden tests pass"
    else:
        feedback = f"{len(tests) - len(bad)}/{len(tests)} hidden tests pass; " + "; ".join(
            f"{t.get('name')}: {str(t.get('message') or t.get('outcome')).splitlines()[0]}" for t in bad[:3]
        )
    return _grade(exercise, verdict, feedback, seconds, tests)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _from_worker(run: SandboxRun, limits: SandboxLimits) -> tuple[Verdict, str] | None:
    """What ended the run, when the worker's end explains it better than the tests that could not finish."""
    c = run.containment
    if run.timed_out:
        return "timeout", f"still running after {limits.wall_limit_s:.0f} s of wall time"
    if c.oom_kills:
        limit = f"{(c.memory_limit_bytes or 0) / MB:.0f} MB"
        return "memory", f"the run went over its memory limit ({limit} for all its processes); {c.oom_kills} killed"
    sig = run.worker_signal
    if sig in (signal.SIGXCPU, signal.SIGKILL) and run.worker_cpu_s >= limits.cpu_s:
        return "timeout", f"used more than its {limits.cpu_s:g} s of CPU time (an endless loop?)"
    if sig == signal.SIGXFSZ:
        return "killed", f"wrote more than {limits.file_mb} MB to one file"
    if sig is not None:
        return "killed", f"the submission's process was killed by {_signal_name(sig)}"
    return None


def _finish(exercise: Exercise, run: SandboxRun, limits: SandboxLimits, index: int, seconds: float) -> CodeGrade:
    """One submission's grade from the judge's report, refined by how the worker and the run ended."""
    report = run.report
    results = [r for r in report["results"] if isinstance(r, dict)] if report else []
    result = next((r for r in results if r.get("index") == index), None)
    ended = _from_worker(run, limits)
    if result is None:
        if ended is None:
            why = "; ".join(str(w) for w in ((report or {}).get("error"), run.jail_error) if w)
            why = why or "the judge gave no report"
            last = run.judge_stderr.strip().splitlines()[-1:] or [""]
            ended = ("error", f"{why} {last[0]}".strip())
        grade = _grade(exercise, ended[0], ended[1], seconds)
    else:
        grade = _from_result(exercise, result, seconds)
        broken = any(t.message.startswith(("not run:", "the submission's process stopped")) for t in grade.tests)
        if ended is not None and (broken or ended[0] in ("timeout", "memory")) and grade.verdict != "forbidden":
            grade = _grade(exercise, ended[0], f"{ended[1]}; {grade.feedback}", seconds, grade.tests)
    missing = run.containment.missing
    weaker = f" [this machine's sandbox lacks: {', '.join(missing)}]" if missing else ""
    return replace(grade, feedback=grade.feedback + weaker, containment=run.containment)


def limits_for(exercise: Exercise, count: int = 1) -> SandboxLimits:
    """The exercise's limits; CPU time scales with the number of submissions sharing the process."""
    return SandboxLimits(cpu_s=exercise.spec.time_limit_s * count, memory_mb=exercise.spec.memory_mb)


def grade_many(
    exercise: Exercise | str, sources: Sequence[str], *, limits: SandboxLimits | None = None
) -> list[CodeGrade]:
    """Grade several submissions of one exercise with ONE judge and ONE worker (for trusted code: references,
    mutants). They share the worker, so one that hangs or crashes takes the rest with it; ``grade_code`` is the one
    for untrusted code. Never raises for anything a submission does.
    """
    exercise = load_exercise(exercise) if isinstance(exercise, str) else exercise
    grades: list[CodeGrade | None] = [static_grade(exercise, s) for s in sources]
    pending = [i for i, g in enumerate(grades) if g is None]
    if not pending:
        return [g for g in grades if g is not None]
    limits = limits or limits_for(exercise, len(pending))
    start = time.monotonic()
    try:
        run = run_sandboxed(
            exercise.path, exercise.spec.entry, exercise.forbidden, [sources[i] for i in pending], limits
        )
    except OSError as e:  # the machine, not the submission: out of file descriptors, processes, disk
        return [g or _grade(exercise, "error", f"the grader could not start a run: {e}", 0.0) for g in grades]
    seconds = (time.monotonic() - start) / len(pending)
    for position, i in enumerate(pending):
        grades[i] = _finish(exercise, run, limits, position, seconds)
    return [g for g in grades if g is not None]


def grade_code(exercise_id: str, source: str, *, limits: SandboxLimits | None = None) -> CodeGrade:
    """Grade one submission (Python source) of a bundled exercise in its own sandboxed process."""
    return grade_many(load_exercise(exercise_id), [source], limits=limits)[0]
