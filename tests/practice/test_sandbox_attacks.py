"""Hostile submissions aimed at the verdict: each one would pass if its trick worked, so none may pass.

The toy exercise's answer is a secret only the hidden tests and the reference know (``f(box)`` must return it);
each attack tries to read, call or forge its way to a pass, or to outlive and outgrow its run. After every run no
process of the run's uid may remain (zombies included), and ``grade_many`` must return, never raise. The attacks
that need a real exercise (patching ``torch.testing.assert_close``, calling tfdojo's RMSNorm) use ``rmsnorm``.
Runs go three at a time; each costs two torch imports.
"""

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sandbox_support import processes_of, toy_exercise

from tfdojo.practice.code import sandbox
from tfdojo.practice.code.exercises import EXERCISES_DIR
from tfdojo.practice.code.grade import grade_many

SECRET = 48271
HIDDEN_TEST = f'''
SECRET = {SECRET}


class _Box:
    """A test object the submission may call: its public data and methods are shared, nothing else."""

    def __init__(self):
        self._secret = SECRET
        self.value = 3

    def get(self):
        return self.value


def test_f(sub):
    assert sub.f(_Box()) == SECRET, "f(box) must return the secret"
'''
SOLUTION = f"def f(box):\n    return {SECRET}\n"
RMSNORM = EXERCISES_DIR / "rmsnorm"


def frame(header: bytes, blob: bytes = b"") -> bytes:
    """A frame as the channel writes them (header and blob lengths, then both)."""
    return struct.pack("<II", len(header), len(blob)) + header + blob


def forged_frame_attack(payload: bytes) -> str:
    """A submission that writes ``payload`` to the channel in place of its reply, then waits."""
    return f"import os, time\ndef f(box):\n    os.write(4, {payload!r})\n    time.sleep(20)\n    return 0\n"


FORGED_LINE = '{"index": 0, "load": null, "tests": [{"name": "test_f", "outcome": "passed", "message": ""}]}\n'
ATTACKS = {
    "import_reference": "def f(box):\n    from reference_solution import f as g\n    return g(box)\n",
    "import_solution_or_tests": textwrap.dedent(
        """
        def f(box):
            for name in ("solution", "hidden_test"):
                try:
                    module = __import__(name)
                except ImportError:
                    continue
                return getattr(module, "SECRET", None) or module.f(box)
            raise AssertionError("no answer key importable")
        """
    ),
    "read_answer_files": textwrap.dedent(
        f"""
        import os, sys
        SKIP = ("/usr", "/proc", "/lib", sys.prefix, sys.base_prefix)
        def f(box):
            places = [*sys.argv, {str(EXERCISES_DIR / "toy")!r}, {str(RMSNORM)!r}, os.getcwd(), "/"]
            for place in places:
                for base, dirs, files in os.walk(place):
                    dirs[:] = [d for d in dirs if not os.path.join(base, d).startswith(SKIP)]
                    for name in ("solution.py", "hidden_test.py"):
                        if name in files:
                            scope = {{}}
                            exec(open(os.path.join(base, name)).read(), scope)
                            return scope.get("SECRET") or scope["f"](box)
            raise AssertionError("no answer file readable")
        """
    ),
    "frames_and_gc": textwrap.dedent(
        """
        import gc, sys
        def f(box):
            frame = sys._getframe(1)
            while frame is not None:
                for scope in (frame.f_locals, frame.f_globals):
                    if "SECRET" in scope:
                        return scope["SECRET"]
                frame = frame.f_back
            for obj in gc.get_objects():
                if isinstance(obj, dict) and "SECRET" in obj:
                    return obj["SECRET"]
            raise AssertionError("no secret in reach")
        """
    ),
    "private_attributes_of_test_objects": textwrap.dedent(
        """
        def f(box):
            for attempt in (lambda: box._secret, lambda: box.__dict__["_secret"], lambda: box.get.__self__._secret,
                            lambda: box.get.__globals__["SECRET"], lambda: getattr(box, "_" + "secret")):
                try:
                    return attempt()
                except Exception:
                    pass
            raise AssertionError("nothing private is shared")
        """
    ),
    "forged_result_lines_and_exit": textwrap.dedent(
        f"""
        import os
        def f(box):
            for fd in range(64):
                try:
                    os.write(fd, {FORGED_LINE!r}.encode())
                except OSError:
                    pass
            os._exit(0)
        """
    ),
    "forged_lines_on_import": "import os\nfor fd in range(64):\n    try:\n"
    f"        os.write(fd, {FORGED_LINE!r}.encode())\n    except OSError:\n        pass\nos._exit(0)\n",
    "atexit_forgery": textwrap.dedent(
        f"""
        import atexit, os
        def forge():
            for fd in range(64):
                try:
                    os.write(fd, {FORGED_LINE!r}.encode())
                except OSError:
                    pass
        atexit.register(forge)
        def f(box):
            return box.value
        """
    ),
    "zombie_leader_survivor": textwrap.dedent(
        """
        import ctypes, os, threading, time
        def f(box):
            pid = os.fork()
            if pid == 0:
                os.setsid()
                threading.Thread(target=lambda: time.sleep(600)).start()
                ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: only the main thread ends, the leader stays a zombie
            time.sleep(2)
            state = [l for l in open(f"/proc/{pid}/status").read().splitlines() if l.startswith("State")][0]
            tasks = len(os.listdir(f"/proc/{pid}/task"))
            raise AssertionError(f"survivor ready: {state.split()[1]} with {tasks} tasks")
        """
    ),
    "five_forked_children_of_1400_mb": textwrap.dedent(
        """
        import os, time
        def f(box):
            children = []
            for _ in range(5):
                pid = os.fork()
                if pid == 0:
                    block = bytearray(1400 * 2**20)
                    time.sleep(20)
                    os._exit(0)
                children.append(pid)
            for pid in children:  # see test_memory_is_limited_for_the_whole_run
                os.waitpid(pid, 0)
            return box.value
        """
    ),
    "memfds_200_of_15_mb": textwrap.dedent(
        """
        import os
        def f(box):
            chunk, fds = b"x" * (15 * 2**20), []
            for i in range(200):
                fd = os.memfd_create(f"m{i}")
                os.write(fd, chunk)
                fds.append(fd)
            return len(fds)
        """
    ),
    "two_gb_in_the_work_dir": textwrap.dedent(
        """
        def f(box):
            chunk = b"x" * (8 * 2**20)
            for i in range(256):
                with open(f"big{i}", "wb") as out:
                    out.write(chunk)
            return box.value
        """
    ),
    "shared_memory_and_tmp": textwrap.dedent(
        """
        def f(box):
            chunk = b"x" * (8 * 2**20)
            for i in range(128):
                with open(f"/dev/shm/big{i}" if i % 2 else f"/tmp/big{i}", "wb") as out:
                    out.write(chunk)
            return box.value
        """
    ),
    "200000_files": textwrap.dedent(
        """
        def f(box):
            for i in range(200_000):
                open(f"f{i}", "w").close()
            return box.value
        """
    ),
    "signal_40_to_itself": "import os\ndef f(box):\n    os.kill(os.getpid(), 40)\n    return box.value\n",
    "garbage_reply": forged_frame_attack(b"garbage that is no frame at all\n" * 10),
    "oversized_reply_header": forged_frame_attack(struct.pack("<II", 0xFFFFFFFF, 0xFFFFFFFF)),
    "malformed_json_reply": forged_frame_attack(frame(b"{not json")),
    "reply_to_another_request": forged_frame_attack(frame(b'{"op":"ok","id":999,"value":["I",48271],"updates":[]}')),
    "tensor_bytes_that_do_not_match": forged_frame_attack(
        frame(b'{"op":"ok","id":2,"value":["T","float32",[1000000],0,4,false,null],"updates":[]}', b"\0" * 4)
    ),
    "unknown_dtype": forged_frame_attack(
        frame(b'{"op":"ok","id":2,"value":["T","object",[1],0,8,false,null],"updates":[]}', b"\0" * 8)
    ),
    "deeply_nested_reply": forged_frame_attack(frame(b'{"op":"ok","id":2,"value":' + b'["U",[' * 5000 + b"]]" * 5000)),
    "huge_integer_reply": forged_frame_attack(frame(b'{"op":"ok","id":2,"value":["I",' + b"9" * 5000 + b"]}")),
    "request_for_an_object_never_given": forged_frame_attack(
        frame(b'{"op":"call","id":1,"target":77,"args":["L",[]],"kwargs":["D",[]]}')
    ),
    "huge_reply": "import torch\ndef f(box):\n    return torch.zeros(20 * 2**20)\n",
    "endless_reply": "import os\ndef f(box):\n    while True:\n        os.write(4, b'\\0' * 65536)\n",
    "ptrace_everything": textwrap.dedent(
        """
        import ctypes
        def f(box):
            libc = ctypes.CDLL(None, use_errno=True)
            for pid in range(1, 5000):
                if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
                    return pid
            raise AssertionError("no process could be traced")
        """
    ),
    "proc_of_other_processes": textwrap.dedent(
        """
        import os
        def f(box):
            seen = []
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or int(pid) == os.getpid():
                    continue
                for part in ("environ", "cmdline", "maps", "mem"):
                    try:
                        with open(f"/proc/{pid}/{part}", "rb") as src:
                            text = src.read(1 << 16)
                    except OSError:
                        continue
                    if b"exercises" in text or b"hidden_test" in text:
                        return 0
                    seen.append((pid, part))
            raise AssertionError(f"readable but clean: {seen}")
        """
    ),
}
if sandbox.cgroup_parents() is None:  # without the run's cgroup nothing would stop 7 GB on the host: not run
    del ATTACKS["five_forked_children_of_1400_mb"]
ATTACK_ON_RMSNORM = {
    "patch_assert_close_json_and_classify": textwrap.dedent(
        """
        import json, sys, torch
        torch.testing.assert_close = lambda *a, **k: None
        json.dumps = lambda *a, **k: '{"index": 0, "load": null, "tests": []}'
        for module in list(sys.modules.values()):
            if hasattr(module, "classify"):
                module.classify = lambda *a, **k: ("passed", "")
        def rms_norm(x, weight, eps=1e-6):
            return x
        """
    ),
    "tfdojo_through_sys_modules": textwrap.dedent(
        """
        import importlib, sys
        NAME = "rms_" + "norm"
        def rms_norm(x, weight, eps=1e-6):
            for name, module in list(sys.modules.items()):
                if name.startswith("tf" + "dojo") and hasattr(module, NAME):
                    return getattr(module, NAME)(x, weight, eps)
            return getattr(importlib.import_module("tf" + "dojo.nn.norms"), NAME)(x, weight, eps)
        """
    ),
}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return toy_exercise(tmp_path_factory.mktemp("exercises"), HIDDEN_TEST, SOLUTION, time_limit_s=4, memory_mb=1024)


@pytest.fixture(scope="module")
def graded(toy):
    """Every attack graded in its own run, three at a time: name -> (grade, processes of its uid afterwards)."""

    def run(exercise, source):
        grade = grade_many(exercise, [source])[0]
        uid = grade.containment.uid if grade.containment else None
        return grade, processes_of(uid) if uid is not None else []

    with ThreadPoolExecutor(max_workers=3) as pool:
        jobs = {name: pool.submit(run, toy, src) for name, src in ATTACKS.items()}
        jobs |= {name: pool.submit(run, "rmsnorm", src) for name, src in ATTACK_ON_RMSNORM.items()}
        jobs["honest"] = pool.submit(run, toy, SOLUTION)
        return {name: job.result() for name, job in jobs.items()}


JAILED = pytest.mark.skipif(not sandbox.namespaces_allowed(), reason="needs root and pid/mount/net namespaces")


def test_the_honest_solution_passes(graded) -> None:
    grade, _ = graded["honest"]
    assert grade.verdict == "passed", grade.feedback


@pytest.mark.parametrize("name", [*ATTACKS, *ATTACK_ON_RMSNORM])
def test_attack_does_not_pass_and_leaves_nothing(graded, name) -> None:
    grade, survivors = graded[name]
    assert grade.verdict != "passed", f"{name} passed: {grade.feedback}"
    assert grade.feedback
    assert survivors == [], f"{name}: processes of the sandbox uid outlived the run: {survivors}"


@pytest.mark.parametrize(
    ("name", "verdict", "words"),
    [
        ("signal_40_to_itself", "killed", "signal 40"),
        ("garbage_reply", "error", "oversized"),
        ("oversized_reply_header", "error", "oversized"),
        ("malformed_json_reply", "error", "malformed"),
        ("reply_to_another_request", "error", "not made"),
        ("tensor_bytes_that_do_not_match", "error", "do not match"),
        ("unknown_dtype", "error", "malformed tensor"),
        ("deeply_nested_reply", "error", "malformed"),
        ("huge_integer_reply", "error", "malformed"),
        ("request_for_an_object_never_given", "error", "unknown object"),
        ("huge_reply", "error", "oversized"),
        ("forged_result_lines_and_exit", "error", "stopped answering"),
        ("forged_lines_on_import", "error", "did not start"),
        ("import_reference", "failed", "ModuleNotFoundError"),
    ],
)
def test_attack_verdict_names_what_happened(graded, name, verdict, words) -> None:
    grade, _ = graded[name]
    assert grade.verdict == verdict, f"{name}: {grade.verdict} ({grade.feedback})"
    assert words in grade.feedback, grade.feedback


def test_the_zombie_leader_was_made_and_did_not_survive(graded) -> None:
    """The attack set itself up (a zombie leader whose thread lives on) before the run ended, and still nothing of
    its uid is left (checked for every attack above)."""
    grade, survivors = graded["zombie_leader_survivor"]
    assert "survivor ready: Z with 2 tasks" in grade.feedback, grade.feedback
    assert survivors == []


@pytest.mark.skipif(sandbox.cgroup_parents() is None, reason="needs a writable cgroup hierarchy (root)")
def test_memory_is_limited_for_the_whole_run(graded) -> None:
    """Five children of 1.4 GB each: the run's cgroup holds all of them to one limit and kills over it.

    The parent waits for its children. When it slept 15 s and returned instead, a busy machine (three runs and three
    CPU hogs on 2 cores: 6 of 6 runs) left the children faulting their pages in at the limit for longer than that:
    the kernel reclaims the processes' file pages again and again before it calls the OOM killer, so the run ended
    "failed" with no kill yet (memory peak under the limit; nothing escaped). Waiting: 3 of 3 "memory" under the
    same load (61 s each, within the 72 s wall limit)."""
    grade, _ = graded["five_forked_children_of_1400_mb"]
    c = grade.containment
    assert grade.verdict == "memory", grade.feedback
    assert c.oom_kills >= 1 and c.memory_peak_bytes <= c.memory_limit_bytes < 5 * 1400 * 2**20, c
    memfd, _ = graded["memfds_200_of_15_mb"]
    assert memfd.containment.memory_peak_bytes <= memfd.containment.memory_limit_bytes < 200 * 15 * 2**20


@JAILED
def test_disk_and_inodes_are_limited_by_the_tmpfs(graded) -> None:
    for name in ("two_gb_in_the_work_dir", "shared_memory_and_tmp"):
        grade, _ = graded[name]
        c = grade.containment
        assert "No space left" in grade.feedback, grade.feedback
        assert c.disk_used_bytes <= c.disk_limit_bytes < 2**30, c
    grade, _ = graded["200000_files"]
    c = grade.containment
    assert "No space left" in grade.feedback, grade.feedback
    assert c.inodes_used <= c.inodes_limit < 200_000, c


def test_fds_are_only_the_channel(toy) -> None:
    probe = "import os\ndef f(box):\n    raise AssertionError(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))\n"
    grade = grade_many(toy, [probe])[0]
    message = grade.tests[0].message
    fds = {int(x) for x in message[message.index("[") + 1 : message.index("]")].split(",")}
    assert fds <= {0, 1, 2, 3, 4, 5}, f"the submission inherited file descriptors: {fds}"


KILLED_PARENT = """
import sys, time
from tfdojo.practice.code import sandbox
from tfdojo.practice.code.grade import grade_many
from tfdojo.practice.code.exercises import load_exercise_dir
sandbox.sandbox_uid = lambda: int(sys.argv[2])
grade_many(load_exercise_dir(sys.argv[1]), ["import time\\ndef f(box):\\n    time.sleep(120)\\n"])
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="the processes are found by the run's uid, which needs root")
def test_kill_9_of_the_grading_process_leaves_nothing(toy) -> None:
    """The grader dies mid-run: the judge and the jail die with it, and the next run removes its cgroup."""
    uid = sandbox.SANDBOX_UID_FIRST + 4243
    before = set(Path("/tmp").glob("tfdojo-sandbox-*"))
    env = {**os.environ, "PYTHONPATH": str(Path(sandbox.__file__).parents[3])}
    grader = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, str(toy.path), str(uid)], env=env)
    deadline = time.monotonic() + 120
    while not processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_of(uid), "the worker never started"
    time.sleep(1)
    os.kill(grader.pid, signal.SIGKILL)
    grader.wait()
    deadline = time.monotonic() + 10
    while processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_of(uid) == [], "the worker outlived the killed grader"
    assert set(Path("/tmp").glob("tfdojo-sandbox-*")) <= before, "the killed run left a directory in /tmp"
    sandbox.remove_leftovers()
    found = sandbox.cgroup_parents()
    if found:
        left = [d for p in set(found[1].values()) for d in p.glob(f"tfdojo-sandbox-{grader.pid}-*")]
        assert left == [], f"the killed run's cgroup was not removed: {left}"
