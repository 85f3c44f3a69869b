"""The coding sandbox contains what a submission can do wrong, each case ending in the right verdict.

One toy exercise (``f() == 1``, 2 CPU seconds) is graded with many faulty submissions; each run costs two torch
imports (judge and worker, in parallel). The hostile ones, aimed at the verdict itself, are in
``test_sandbox_attacks.py``, each in a run of its own.
"""

import os
import socket
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from sandbox_support import processes_of, toy_exercise

from tfdojo.errors import ExerciseError
from tfdojo.practice.code import sandbox
from tfdojo.practice.code.exercises import load_exercise, load_exercise_dir
from tfdojo.practice.code.forbidden import find_forbidden
from tfdojo.practice.code.grade import grade_many

SECRET = "tfdojo-test-secret-5f1c"
CANARY = Path("/tmp") / f"tfdojo-escape-canary-{os.getpid()}"
FORBIDDEN = ["torch.nn.MultiheadAttention", "scaled_dot_product_attention"]

SUBMISSIONS = {
    "correct": "def f():\n    return 1\n",
    "wrong": "def f():\n    return 2\n",
    "infinite_loop": "def f():\n    while True:\n        pass\n",
    "torch_50gb": "import torch\ndef f():\n    torch.empty(50 * 2**30, dtype=torch.uint8)\n    return 1\n",
    "list_50gb": "def f():\n    x = [0] * (50 * 2**30 // 8)\n    return 1\n",
    "write_parent_dir": "def f():\n    open('../escaped.txt', 'w').write('x')\n    return 1\n",
    "write_usr": "def f():\n    open('/usr/escaped.txt', 'w').write('x')\n    return 1\n",
    "write_tmp": f"def f():\n    open({str(CANARY)!r}, 'w').write('x')\n    return 1\n",
    "write_own_dir": "def f():\n    open('scratch.txt', 'w').write('x')\n    return len(open('scratch.txt').read())\n",
    "env_secret": textwrap.dedent(
        """
        import os
        def f():
            own = dict(os.environ)
            try:
                raw = open(f"/proc/{os.getppid()}/environ", "rb").read().decode(errors="replace").split(chr(0))
                parent = [v for v in raw if v.startswith("TFDOJO_SANDBOX_TEST_SECRET=")]
            except OSError as e:
                parent = repr(e)
            raise AssertionError(f"{own} PARENT: {parent}")
        """
    ),
    "computed_forbidden_name": textwrap.dedent(
        """
        import torch
        import torch.nn.functional as F
        def f():
            q = torch.zeros(1, 1, 2, 4)
            getattr(F, "scaled_dot_" + "product_attention")(q, q, q)
            return 1
        """
    ),
    "computed_forbidden_import": "def f():\n    __import__('tf' + 'dojo')\n    return 1\n",
    "exits": "import sys\ndef f():\n    sys.exit(0)\n",
    "syntax_error": "def f(:\n    return 1\n",
    "imports_tfdojo": "import tfdojo\ndef f():\n    return 1\n",
    "imports_mha": "from torch.nn import MultiheadAttention\ndef f():\n    return 1\n",
}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A minimal exercise folder: the submission's f() must return 1."""
    return toy_exercise(
        tmp_path_factory.mktemp("exercises"),
        "def test_f(sub):\n    assert sub.f() == 1, f'f() returned {sub.f()!r}'\n",
        SUBMISSIONS["correct"],
        forbidden=tuple(FORBIDDEN),
    )


@pytest.fixture(scope="module")
def grades(toy):
    """Every submission graded with a secret in the parent's environment. They are faulty, not hostile, so all
    but the endless loop share one worker (``grade_many``, verdicts per submission): two runs instead of fifteen."""
    os.environ["TFDOJO_SANDBOX_TEST_SECRET"] = SECRET
    shared = [name for name in SUBMISSIONS if name != "infinite_loop"]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            together = pool.submit(grade_many, toy, [SUBMISSIONS[name] for name in shared])
            alone = pool.submit(grade_many, toy, [SUBMISSIONS["infinite_loop"]])
            return {**dict(zip(shared, together.result(), strict=True)), "infinite_loop": alone.result()[0]}
    finally:
        del os.environ["TFDOJO_SANDBOX_TEST_SECRET"]


@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        ("correct", "passed"),
        ("wrong", "failed"),
        ("infinite_loop", "timeout"),
        ("torch_50gb", "memory"),
        ("list_50gb", "memory"),
        ("write_own_dir", "passed"),
        ("write_parent_dir", "error"),
        ("write_usr", "error"),
        ("computed_forbidden_name", "forbidden"),
        ("computed_forbidden_import", "forbidden"),
        ("exits", "error"),
        ("syntax_error", "error"),
        ("imports_tfdojo", "forbidden"),
        ("imports_mha", "forbidden"),
    ],
)
def test_verdict(grades, name, verdict) -> None:
    grade = grades[name]
    assert grade.verdict == verdict, f"{name}: {grade.verdict} ({grade.feedback})"
    assert grade.passed == (verdict == "passed")
    assert grade.feedback


FORK_BOMB = "import os\ndef f():\n    while True:\n        os.fork()\n"


def test_fork_bomb_is_stopped_by_the_process_limit_and_its_children_are_gone(toy) -> None:
    grade = grade_many(toy, [FORK_BOMB])[0]
    assert grade.verdict in ("error", "killed", "memory"), grade.feedback
    c = grade.containment
    if c.uid is not None:
        assert processes_of(c.uid) == [], "processes of the sandbox uid outlived the run"
    if c.pids_limit is not None:  # the cgroup counted every process of the run and refused the rest
        assert c.forks_refused > 0 and c.pids_peak <= c.pids_limit, c
    else:
        assert "Resource temporarily unavailable" in grade.feedback or grade.verdict == "killed"


JAILED = pytest.mark.skipif(not sandbox.namespaces_allowed(), reason="needs root and pid/mount/net namespaces")


@JAILED
def test_the_network_is_out_of_reach(toy) -> None:
    """A server the parent listens on (loopback) cannot be reached from inside the sandbox."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        call = f"socket.socket().connect((b'127.0.0.1', {port}))"  # a bytes host needs no codec import
        source = f"import socket\ndef f():\n    {call}\n    return 1\n"
        grade = grade_many(toy, [source])[0]
    assert grade.verdict != "passed", grade.feedback
    assert "unreachable" in grade.feedback.lower() or "refused" in grade.feedback.lower(), grade.feedback


@JAILED
def test_writes_land_only_in_the_private_tmpfs(grades) -> None:
    assert grades["write_tmp"].verdict == "passed", "/tmp inside is the run's own tmpfs"
    assert not CANARY.exists(), "the submission wrote into the host's /tmp"
    assert grades["write_usr"].verdict == "error"
    assert "Read-only" in grades["write_usr"].feedback or "Permission" in grades["write_usr"].feedback
    assert not os.path.exists("/usr/escaped.txt")


def test_environment_secret_does_not_reach_the_submission(grades) -> None:
    grade = grades["env_secret"]
    assert grade.tests, grade.feedback
    message = grade.tests[0].message
    own, parent = message.split(" PARENT: ", 1)
    assert "HOME" in own, "the probe should have reported the environment it saw"
    assert SECRET not in own, "the parent's environment leaked into the submission's"
    assert SECRET not in parent


def test_layers_are_reported(grades) -> None:
    c = grades["correct"].containment
    assert c is not None and "process boundary (judge outside, worker inside)" in c.layers
    assert ("pid namespace" in c.layers) == sandbox.namespaces_allowed()
    assert ("own uid" in c.layers) == (os.geteuid() == 0)
    assert set(c.layers).isdisjoint(c.missing)


def test_feedback_names_the_problem(grades) -> None:
    assert "line 1" in grades["syntax_error"].feedback
    assert "tfdojo" in grades["imports_tfdojo"].feedback
    assert "MultiheadAttention" in grades["imports_mha"].feedback
    assert "scaled_dot_product_attention" in grades["computed_forbidden_name"].feedback
    assert "CPU" in grades["infinite_loop"].feedback


def test_parent_keeps_working(grades) -> None:
    assert torch.ones(3).sum().item() == 3.0
    assert grades["correct"].tests[0].ok


def test_static_check_sees_through_aliases_but_not_computed_names() -> None:
    source = textwrap.dedent(
        """
        import torch.nn as nn
        import torch.nn.functional as F
        a = nn.MultiheadAttention(4, 2)
        b = getattr(F, "scaled_dot_product_attention")
        c = getattr(F, "scaled_dot_" + "product_attention")
        """
    )
    found = {v.entry: v.line for v in find_forbidden(source, FORBIDDEN)}
    assert found == {"torch.nn.MultiheadAttention": 4, "scaled_dot_product_attention": 5}
    concatenated_only = 'import torch.nn.functional as F\nfn = getattr(F, "scaled_dot_" + "product_attention")\n'
    assert find_forbidden(concatenated_only, FORBIDDEN) == [], "a computed name is left to the runtime guard"


def test_static_check_allows_lookalikes() -> None:
    source = "import torch\ndef attention(q, k, v):\n    return torch.softmax(q @ k.transpose(-2, -1), -1) @ v\n"
    assert find_forbidden(source, FORBIDDEN + ["tfdojo"]) == []


def test_unknown_or_broken_exercise_raises(tmp_path) -> None:
    with pytest.raises(ExerciseError, match="no coding exercise"):
        load_exercise("no-such-exercise")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("statement.md", "starter.py", "solution.py", "hidden_test.py"):
        (broken / name).write_text("")
    (broken / "exercise.toml").write_text('title = "Broken"\nsection = "nowhere"\n')
    with pytest.raises(ExerciseError, match="section"):
        load_exercise_dir(broken)
    (broken / "hidden_test.py").unlink()
    with pytest.raises(ExerciseError, match="hidden_test.py"):
        load_exercise_dir(broken)


def test_without_namespaces_the_missing_layers_are_named(toy, monkeypatch) -> None:
    """Where the machine allows no namespaces, uid or cgroup (not root), the run still grades, confined by the
    process boundary and rlimits, and both the containment and the feedback say what was missing."""
    monkeypatch.setenv(sandbox.SPARE_ENV, "0")
    sandbox.discard_spare()
    monkeypatch.setattr(sandbox, "namespaces_allowed", lambda: False)
    monkeypatch.setattr(sandbox, "sandbox_uid", lambda: None)
    monkeypatch.setattr(sandbox.RunCgroup, "create", classmethod(lambda cls, name, limits: None))
    grade = grade_many(toy, [SUBMISSIONS["correct"]])[0]
    assert grade.verdict == "passed", grade.feedback
    missing = grade.containment.missing
    assert {"pid namespace", "own uid", "network namespace", "cgroup process limit"} <= set(missing)
    assert "sandbox lacks: " in grade.feedback and "pid namespace" in grade.feedback
    assert not list(Path("/tmp").glob(f"{sandbox.RUN_PREFIX}{os.getpid()}-*")), "the plain run's directory is gone"


def test_the_warm_spare_outlives_the_thread_that_graded(toy) -> None:
    """The next grading's run, started at the end of a grading on a short-lived thread, is still alive after that
    thread ends (its processes die with the spawner thread, not with the request's)."""
    worker = threading.Thread(target=grade_many, args=(toy, [SUBMISSIONS["correct"]]))
    worker.start()
    worker.join()
    time.sleep(1.0)
    assert sandbox._spare and all(run.alive() for run in sandbox._spare)
    assert grade_many(toy, [SUBMISSIONS["correct"]])[0].verdict == "passed"


@pytest.mark.skipif(not sandbox.namespaces_allowed(), reason="the jail's new root needs root and namespaces")
def test_bound_directories_under_tmp_are_not_hidden_by_the_private_tmp(toy, monkeypatch) -> None:
    """An interpreter or venv living under /tmp (a CI clone) stays visible, read-only, inside the jail: the private
    /tmp tmpfs is mounted before the host binds, not on top of them (a clone under /tmp once graded every exercise
    as an error)."""
    shared = Path("/tmp") / f"tfdojo-bound-under-tmp-{os.getpid()}"
    shared.mkdir()
    (shared / "one.txt").write_text("1")
    real_binds = sandbox._binds
    monkeypatch.setattr(sandbox, "_binds", lambda: [*real_binds(), str(shared)])
    monkeypatch.setenv(sandbox.SPARE_ENV, "0")
    sandbox.discard_spare()
    reads = f"def f():\n    return int(open({str(shared / 'one.txt')!r}).read())\n"
    writes = f"def f():\n    open({str(shared / 'new.txt')!r}, 'w').write('x')\n    return 1\n"
    try:
        read_grade, write_grade = grade_many(toy, [reads, writes])
    finally:
        (shared / "one.txt").unlink()
        shared.rmdir()
    assert read_grade.verdict == "passed", read_grade.feedback
    assert write_grade.verdict != "passed", "a bound host directory must stay read-only"
