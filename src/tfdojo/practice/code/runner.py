"""The sandboxed side of grading: ``python -m tfdojo.practice.code.runner <exercise_dir> <workdir> [<workdir> ...]``.

In order: confine this process (memory, files), import torch and the hidden tests while still privileged, wrap
the forbidden APIs, drop privileges and start the CPU budget; then, for each workdir, import its
``submission.py``, run every hidden test in file order (catching exceptions per test) and write one JSON line to
the original stdout. The submission's own prints go to stderr. Several workdirs share one process, so that is only
for trusted code (reference solutions and mutants); ``grade_code`` runs one submission per process.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import sys
import tomllib
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from tfdojo.practice.code.forbidden import ALWAYS_FORBIDDEN, ForbiddenUse, RuntimeGuards
from tfdojo.practice.code.sandbox import ChildSettings, confine, drop_privileges, start_cpu_budget

MESSAGE_CHARS = 600
MEMORY_MARKERS = ("can't allocate memory", "not enough memory", "out of memory", "std::bad_alloc")
# Modules a submission may reasonably import, loaded before the uid switch (the sandbox uid may not be able to read
# the interpreter's own files, e.g. a pyenv under /root).
PRELOAD = ("math", "cmath", "random", "itertools", "functools", "collections", "dataclasses", "typing")
TFDOJO_DIR = Path(__file__).resolve().parents[2]
HiddenTest = Callable[[ModuleType], None]


def _short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def _submission_line(exc: BaseException, submission: Path) -> int | None:
    """The last line of the submission in the exception's traceback, to point the person at their code."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == str(submission):
            line = frame.lineno
    return line


def classify(exc: BaseException, submission: Path) -> tuple[str, str]:
    """(outcome, message) for an exception raised by a hidden test or by importing the submission.

    failed: a wrong answer (assertion, NotImplementedError, or an ordinary exception in the submission);
    memory: the address-space limit; error: the sandbox refused something (processes, writing outside);
    forbidden: a guarded API; exited: the submission called exit.
    """
    line = _submission_line(exc, submission)
    where = f" (submission line {line})" if line else ""
    if isinstance(exc, ForbiddenUse):
        return "forbidden", str(exc)
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and any(m in str(exc) for m in MEMORY_MARKERS)):
        return "memory", f"ran out of its memory budget{where}: {type(exc).__name__}: {_short(str(exc))}"
    if isinstance(exc, NotImplementedError):
        return "failed", f"not implemented yet{where}"
    if isinstance(exc, AssertionError):
        return "failed", _short(str(exc)) or f"assertion failed{where}"
    if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG):
        return "error", f"refused by the sandbox{where}: {type(exc).__name__}: {_short(str(exc))}"
    if isinstance(exc, SystemExit | KeyboardInterrupt | GeneratorExit):
        return "error", f"the submission tried to exit ({type(exc).__name__}){where}"
    return "failed", f"{type(exc).__name__}{where}: {_short(str(exc))}"


def load_hidden_tests(path: Path) -> list[tuple[str, HiddenTest]]:
    """The ``test_*`` functions of the hidden test file, in file order."""
    spec = importlib.util.spec_from_file_location("hidden_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [(name, fn) for name, fn in vars(module).items() if name.startswith("test_") and callable(fn)]
    return sorted(tests, key=lambda item: item[1].__code__.co_firstlineno)


def import_submission(path: Path, name: str) -> ModuleType:
    """Execute ``submission.py`` as a fresh module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def grade_workdir(
    index: int, workdir: Path, tests: list[tuple[str, HiddenTest]], entry: tuple[str, ...], guards: RuntimeGuards
) -> dict[str, Any]:
    """Import one submission and run every hidden test on it; the JSON-ready result.

    A process the submission forked that returns into this loop exits at once: only the runner reports.
    """
    owner = os.getpid()
    os.chdir(workdir)
    submission = workdir / "submission.py"
    result: dict[str, Any] = {"index": index, "load": None, "tests": []}
    try:
        module = import_submission(submission, f"submission_{index}")
    except SyntaxError as e:
        result["load"] = {"outcome": "error", "message": f"syntax error at line {e.lineno}: {e.msg}"}
        return result
    except BaseException as e:  # noqa: BLE001 - any failure while importing is the submission's
        outcome, message = classify(e, submission)
        result["load"] = {"outcome": "error" if outcome == "failed" else outcome, "message": f"on import: {message}"}
        return result
    missing = [name for name in entry if not hasattr(module, name)]
    if missing:
        result["load"] = {"outcome": "error", "message": f"the submission does not define {', '.join(missing)}"}
        return result
    for name, test in tests:
        seen = len(guards.violations)
        try:
            test(module)
            outcome, message = "passed", ""
        except BaseException as e:  # noqa: BLE001 - one test's failure must not stop the others
            outcome, message = classify(e, submission)
        if os.getpid() != owner:
            os._exit(0)
        if len(guards.violations) > seen:  # the submission swallowed the ForbiddenUse
            outcome, message = "forbidden", guards.violations[seen].describe()
        result["tests"].append({"name": name, "outcome": outcome, "message": message})
    return result


def warm_up(tests: list[tuple[str, HiddenTest]], solution: Path) -> None:
    """Run the hidden tests once on the reference solution while still privileged, so that every module they load
    lazily (torch.testing pulls in sympy on first use, for instance) is in memory before the uid switch."""
    for module_name in PRELOAD:
        importlib.import_module(module_name)
    reference = import_submission(solution, "reference_solution")
    for _, test in tests:
        with contextlib.suppress(Exception):
            test(reference)


def trusted_roots(exercise_dir: Path) -> list[Path]:
    """Where trusted code lives: the interpreter, the virtualenv, tfdojo itself and the hidden tests."""
    import torch

    return [Path(sys.base_prefix), Path(sys.prefix), Path(torch.__file__).parents[1], TFDOJO_DIR, exercise_dir]


def main(argv: list[str] | None = None) -> None:
    """Grade the submissions in the workdirs given against the exercise's hidden tests; one JSON line each."""
    args = sys.argv[1:] if argv is None else argv
    exercise_dir, workdirs = Path(args[0]).resolve(), [Path(a).resolve() for a in args[1:]]
    results = os.dup(1)  # results go to the real stdout; anything the submission prints goes to stderr
    os.dup2(2, 1)
    settings = ChildSettings.from_env()
    confine(settings.limits)

    import torch  # before dropping privileges: the interpreter's files may not be readable by the sandbox uid
    import torch.testing  # noqa: F401 - the hidden tests' comparisons

    torch.set_num_threads(1)
    spec = tomllib.loads((exercise_dir / "exercise.toml").read_text(encoding="utf-8"))  # validated by the parent
    entry, forbidden = tuple(spec["entry"]), (*ALWAYS_FORBIDDEN, *spec.get("forbidden", ()))
    tests = load_hidden_tests(exercise_dir / "hidden_test.py")
    warm_up(tests, exercise_dir / "solution.py")
    guards = RuntimeGuards(forbidden, trusted_roots(exercise_dir))
    guards.install()
    owner = os.getpid()
    drop_privileges(settings, workdirs)
    start_cpu_budget(settings.limits.cpu_s)
    for index, workdir in enumerate(workdirs):
        result = grade_workdir(index, workdir, tests, entry, guards)
        if os.getpid() != owner:  # a process the submission forked came back here: it must not report
            os._exit(0)
        os.write(results, (json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main()
