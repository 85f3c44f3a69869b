"""Grading a coding submission: the static forbidden-API check, then the hidden tests in the sandbox."""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tfdojo.practice.code.exercises import Exercise, load_exercise
from tfdojo.practice.code.forbidden import find_forbidden
from tfdojo.practice.code.sandbox import SandboxLimits, SandboxRun, run_sandboxed, runner_argv

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
    """The grade from one JSON line of the runner."""
    if result["load"] is not None:
        return _grade(exercise, result["load"]["outcome"], result["load"]["message"], seconds)
    tests = [TestResult(t["name"], t["outcome"] == "passed", t["message"]) for t in result["tests"]]
    outcomes = {t["outcome"] for t in result["tests"]} or {"passed"}
    verdict = next(v for v in SEVERITY if v in outcomes)
    bad = [t for t in result["tests"] if t["outcome"] != "passed"]
    if not bad:
        feedback = f"all {len(tests)} hidden tests pass"
    else:
        feedback = f"{len(tests) - len(bad)}/{len(tests)} hidden tests pass; " + "; ".join(
            f"{t['name']}: {t['message'].splitlines()[0] if t['message'] else t['outcome']}" for t in bad[:3]
        )
    return _grade(exercise, verdict, feedback, seconds, tests)


def _from_crash(exercise: Exercise, run: SandboxRun, limits: SandboxLimits) -> CodeGrade:
    """The grade when the runner ended without reporting this submission."""
    seconds = run.wall_s
    if run.timed_out:
        return _grade(exercise, "timeout", f"still running after {limits.wall_limit_s:.0f} s of wall time", seconds)
    sig = run.signal
    if sig in (signal.SIGXCPU, signal.SIGKILL) and run.cpu_s >= limits.cpu_s:
        return _grade(
            exercise, "timeout", f"used more than its {limits.cpu_s:g} s of CPU time (an endless loop?)", seconds
        )
    if sig == signal.SIGXFSZ:
        return _grade(exercise, "killed", f"wrote more than {limits.file_mb} MB to a file or its output", seconds)
    last = run.stderr.strip().splitlines()[-1:] or [""]
    if "MemoryError" in last[0] or "can't allocate memory" in last[0]:
        return _grade(exercise, "memory", f"ran out of its memory budget: {last[0]}", seconds)
    if sig is not None:
        return _grade(exercise, "killed", f"the sandbox was killed by {signal.Signals(sig).name}", seconds)
    return _grade(exercise, "error", f"the runner stopped (exit status {run.returncode}): {last[0]}", seconds)


def limits_for(exercise: Exercise, count: int = 1) -> SandboxLimits:
    """The exercise's limits; CPU time scales with the number of submissions sharing the process."""
    return SandboxLimits(cpu_s=exercise.spec.time_limit_s * count, memory_mb=exercise.spec.memory_mb)


def grade_many(
    exercise: Exercise | str, sources: Sequence[str], *, limits: SandboxLimits | None = None
) -> list[CodeGrade]:
    """Grade several submissions of one exercise in ONE sandboxed process (for trusted code: references, mutants).

    They share the process, so one that hangs or crashes takes the rest with it; ``grade_code`` is the one for
    untrusted code.
    """
    exercise = load_exercise(exercise) if isinstance(exercise, str) else exercise
    grades: list[CodeGrade | None] = [static_grade(exercise, s) for s in sources]
    pending = [i for i, g in enumerate(grades) if g is None]
    if not pending:
        return [g for g in grades if g is not None]
    limits = limits or limits_for(exercise, len(pending))
    run_root = Path(tempfile.mkdtemp(prefix="tfdojo-sandbox-"))
    run_root.chmod(0o711)  # the sandbox uid may pass through to its workdir, not list or write here
    try:
        workdirs = []
        for i in pending:
            workdir = run_root / f"work{i}"
            workdir.mkdir()
            (workdir / "submission.py").write_text(sources[i], encoding="utf-8")
            workdirs.append(workdir)
        start = time.monotonic()
        run = run_sandboxed(runner_argv(str(exercise.path), *map(str, workdirs)), run_root, workdirs, limits)
        seconds = (time.monotonic() - start) / len(pending)
        results = _parse(run.stdout)
        for position, i in enumerate(pending):
            result = results.get(position)
            grade = _from_result(exercise, result, seconds) if result else _from_crash(exercise, run, limits)
            if run.escaped:
                grade = _grade(exercise, "error", f"wrote outside its directory: {', '.join(run.escaped)}", seconds)
            grades[i] = grade
    finally:
        shutil.rmtree(run_root, ignore_errors=True)
    return [g for g in grades if g is not None]


def _parse(stdout: str) -> dict[int, dict[str, Any]]:
    """The runner's JSON lines by submission index (a line that is not ours is ignored)."""
    results = {}
    for line in stdout.splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and isinstance(data.get("index"), int):
            results[data["index"]] = data
    return results


def grade_code(exercise_id: str, source: str, *, limits: SandboxLimits | None = None) -> CodeGrade:
    """Grade one submission (Python source) of a bundled exercise in its own sandboxed process."""
    return grade_many(load_exercise(exercise_id), [source], limits=limits)[0]
