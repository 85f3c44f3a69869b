"""The judge: ``judge READ_FD WRITE_FD`` with the job (exercise, sources, limits) as one JSON line on stdin.

It runs outside the sandbox, sends the worker its start message, loads the hidden tests (and through them the
references in tfdojo), reads the worker's hello, and runs every ``test_*(sub)`` with ``sub`` a ``Remote`` for
the submission's module: each ``sub.fn(...)`` is a call over the channel. The judge compares and decides; one
JSON line with every test's outcome goes to its stdout, which only the grading parent reads. A test's own
objects (a model with ``project``/``readout`` methods, experts) may be called by the submission, and their public
data read; nothing else of the judge is reachable.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import FunctionType, MethodType, ModuleType
from typing import Any

import torch

from tfdojo.practice.code.channel import ChannelError, Peer, Remote, RemoteError, read_frame, write_frame

TEST_MODULE = "hidden_test"
MESSAGE_CHARS = 600
MEMORY_MARKERS = ("can't allocate memory", "not enough memory", "out of memory", "std::bad_alloc")
REFUSED = (errno.EAGAIN, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG, errno.ENOSPC, errno.EDQUOT,
           errno.EMFILE, errno.ENETUNREACH, errno.ECONNREFUSED)  # fmt: skip
EXITS = ("SystemExit", "KeyboardInterrupt", "GeneratorExit")
HiddenTest = Callable[[Any], None]


def _short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."


def from_test_file(obj: Any) -> bool:
    """Whether an object is the hidden tests' own (a function, a method or an instance of a class defined there)."""
    if isinstance(obj, MethodType):
        return from_test_file(obj.__func__)
    if isinstance(obj, FunctionType):
        return obj.__module__ == TEST_MODULE
    return not isinstance(obj, ModuleType | type) and type(obj).__module__ == TEST_MODULE


def readable(obj: Any, name: str) -> bool:
    """The submission may read public attributes of the tests' own objects (data by value, methods as handles)."""
    return not name.startswith("_") and from_test_file(obj)


def classify(exc: BaseException) -> tuple[str, str]:
    """(outcome, message) for an exception that ended a hidden test."""
    if isinstance(exc, ChannelError):
        return "error", f"the submission's process stopped answering: {exc}"
    if isinstance(exc, RemoteError):
        where = f" (submission line {exc.line})" if exc.line else ""
        text = f"{exc.kind}{where}: {_short(str(exc))}"
        if exc.kind == "ForbiddenUse":
            return "forbidden", str(exc)
        if exc.kind == "MemoryError" or any(m in str(exc) for m in MEMORY_MARKERS):
            return "memory", f"ran out of its memory budget{where}: {_short(str(exc))}"
        if exc.kind == "NotImplementedError":
            return "failed", f"not implemented yet{where}"
        if exc.kind in EXITS:
            return "error", f"the submission tried to exit ({exc.kind}){where}"
        if exc.errno in REFUSED:
            return "error", f"refused by the sandbox{where}: {text}"
        return "failed", text
    if isinstance(exc, AssertionError):
        return "failed", _short(str(exc)) or "assertion failed"
    return "failed", f"{type(exc).__name__}: {_short(str(exc))}"


def load_hidden_tests(path: Path) -> list[tuple[str, HiddenTest]]:
    """The ``test_*`` functions of the hidden test file, in file order."""
    spec = importlib.util.spec_from_file_location(TEST_MODULE, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[TEST_MODULE] = module
    spec.loader.exec_module(module)
    tests = [(name, fn) for name, fn in vars(module).items() if name.startswith("test_") and callable(fn)]
    return sorted(tests, key=lambda item: item[1].__code__.co_firstlineno)


class Judge:
    """Runs the hidden tests against the worker's submissions; collects what the worker reports as forbidden."""

    def __init__(self, rfd: int, wfd: int, tests: list[tuple[str, HiddenTest]], entry: list[str]) -> None:
        self.peer = Peer(rfd, wfd, share=from_test_file, readable=readable)
        self.peer.on_reply = self.note
        self.tests, self.entry = tests, entry
        self.violations: list[str] = []
        self.broken: str | None = None

    def note(self, header: dict[str, Any]) -> None:
        found = header.get("forbidden")
        if isinstance(found, list):
            self.violations += [_short(v) for v in found if isinstance(v, str)][:10]

    def hello(self, count: int) -> list[dict[str, Any]]:
        """The worker's report of what loaded; a malformed one breaks the channel."""
        header, _ = read_frame(self.peer.rfd, self.peer.caps)
        modules = header.get("modules")
        if header.get("op") != "hello" or not isinstance(modules, list) or len(modules) != count:
            raise ChannelError("a malformed hello")
        return modules

    def grade(self, index: int, loaded: dict[str, Any]) -> dict[str, Any]:
        """One submission: its load problem, or every hidden test's outcome."""
        result: dict[str, Any] = {"index": index, "load": None, "tests": []}
        if not isinstance(loaded, dict):
            raise ChannelError("a malformed hello")
        load, names = loaded.get("load"), loaded.get("names")
        if load is not None:
            if not isinstance(load, dict):
                raise ChannelError("a malformed hello")
            exc = self.peer_error(load)
            outcome, message = classify(exc)
            result["load"] = {
                "outcome": "error" if outcome == "failed" else outcome,
                "message": f"on import: {message}",
            }
            return result
        missing = [n for n in self.entry if not isinstance(names, list) or n not in names]
        if missing:
            result["load"] = {"outcome": "error", "message": f"the submission does not define {', '.join(missing)}"}
            return result
        sub = Remote(self.peer, index)
        for name, test in self.tests:
            seen = len(self.violations)
            if self.broken is not None:
                result["tests"].append({"name": name, "outcome": "error", "message": f"not run: {self.broken}"})
                continue
            try:
                test(sub)
                outcome, message = "passed", ""
            except Exception as e:  # noqa: BLE001 - one test's failure must not stop the others
                outcome, message = classify(e)
                if isinstance(e, ChannelError):
                    self.broken = message
            if len(self.violations) > seen:  # the submission swallowed the ForbiddenUse
                outcome, message = "forbidden", self.violations[seen]
            result["tests"].append({"name": name, "outcome": outcome, "message": message})
        return result

    def peer_error(self, load: dict[str, Any]) -> BaseException:
        from tfdojo.practice.code.channel import remote_error

        kind, message = load.get("type"), load.get("message")
        if not isinstance(kind, str) or not isinstance(message, str):
            raise ChannelError("a malformed hello")
        line = load.get("line")
        code = load.get("errno")
        if kind == "SyntaxError":
            return remote_error("Exception", f"syntax error: {message}", None, line if type(line) is int else None)
        return remote_error(kind, message, code if type(code) is int else None, line if type(line) is int else None)


def main(argv: list[str] | None = None) -> None:
    """Wait for the job on stdin (the judge may be started ahead, as a warm spare), start the worker with it,
    grade every submission it serves; one JSON line of results on stdout."""
    args = sys.argv[1:] if argv is None else argv
    rfd, wfd = int(args[0]), int(args[1])
    results = os.dup(1)  # results go to the real stdout; anything a test prints goes to stderr
    os.dup2(2, 1)
    torch.set_num_threads(1)
    torch.testing.assert_close(torch.ones(1), torch.ones(1))  # its first call imports sympy: do it while waiting
    job = json.loads(sys.stdin.readline())
    sources = job["sources"]
    start = {"op": "start", **{k: job[k] for k in ("sources", "forbidden", "cpu_s", "as_bytes")}}
    tests = load_hidden_tests(Path(job["exercise_dir"]) / "hidden_test.py")
    judge = Judge(rfd, wfd, tests, job["entry"])
    report: dict[str, Any] = {"results": []}
    try:
        write_frame(wfd, start, b"")
        modules = judge.hello(len(sources))
    except ChannelError as e:
        report["error"] = f"the submission's process did not start: {e}"
    else:
        for index, loaded in enumerate(modules):
            try:
                report["results"].append(judge.grade(index, loaded))
            except ChannelError as e:
                report["error"] = f"the submission's process sent a malformed report: {e}"
                break
    report["violations"] = judge.violations
    os.write(results, (json.dumps(report) + "\n").encode())
    os.close(wfd)  # the worker sees the channel close and leaves


if __name__ == "__main__":
    main()
