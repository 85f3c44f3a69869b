"""The sandbox a submission runs in: resource limits, a throw-away uid, a fresh directory, a scrubbed environment.

Parent side (``run_sandboxed``): makes the child a new session, gives it a scrubbed environment, a working
directory as cwd/HOME/TMPDIR, closed stdin, a wall-clock timeout, and afterwards kills whatever is left of it.
Child side (``confine`` then ``drop_privileges``, called by the runner before it imports the submission): sets
RLIMIT_AS/FSIZE/CORE/NOFILE/CPU/NPROC and, when started as root, switches to an unused uid so that RLIMIT_NPROC
applies (it does not to root), writes outside the working directory are refused by file permissions and
read-only mounts, the network is a namespace of its own with loopback down, and every leftover process can be
found by its uid and killed. Limits and what they do not cover: ``docs/exercises.md``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

MB = 1 << 20
SETTINGS_ENV = "TFDOJO_SANDBOX"
# Unused uids far above any real account (uid_t is 32-bit); one is drawn per run so runs never share a count.
SANDBOX_UID_FIRST = 1_900_000_000
SANDBOX_UID_COUNT = 100_000_000
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS, MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20000, 1, 32, 4096, 16384, 1 << 18
CLONE_NEWNET = 0x40000000
# World-writable places a process of any uid could write to; made read-only in the sandbox's mount namespace.
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue", "/run/lock")


@dataclass(frozen=True)
class SandboxLimits:
    """What one sandboxed run may use. ``base_memory_mb`` is the address space torch itself needs (~0.6 GB
    measured after import, with room for glibc arenas); ``memory_mb`` is the exercise's budget on top."""

    cpu_s: float = 20.0
    memory_mb: int = 1024
    base_memory_mb: int = 2048
    wall_s: float | None = None
    max_processes: int = 16
    file_mb: int = 16
    output_bytes: int = 64_000

    @property
    def wall_limit_s(self) -> float:
        """The wall-clock timeout: given, or room for a slow torch import on a busy machine plus 3x the CPU time."""
        return self.wall_s if self.wall_s is not None else 60.0 + 3.0 * self.cpu_s


@dataclass(frozen=True)
class ChildSettings:
    """What the runner needs to confine itself: the limits and the uid to switch to (None: stay as we are)."""

    limits: SandboxLimits
    uid: int | None
    token: str

    def to_env(self) -> str:
        """JSON for the child's environment."""
        return json.dumps({"limits": asdict(self.limits), "uid": self.uid, "token": self.token})

    @classmethod
    def from_env(cls) -> ChildSettings:
        """The settings the parent passed; defaults when run by hand."""
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            return cls(limits=SandboxLimits(), uid=None, token="")
        data = json.loads(raw)
        return cls(limits=SandboxLimits(**data["limits"]), uid=data["uid"], token=data["token"])


@dataclass(frozen=True)
class SandboxRun:
    """What came back from one run: exit status, the runner's result lines, the tail of stderr, and how it ended."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    cpu_s: float
    wall_s: float
    escaped: tuple[str, ...]

    @property
    def signal(self) -> int | None:
        """The signal that killed the runner, if one did."""
        return -self.returncode if self.returncode < 0 else None


# ---- child side --------------------------------------------------------------------------------------------


def _set_limit(kind: int, value: int) -> None:
    resource.setrlimit(kind, (value, value))


def confine(limits: SandboxLimits) -> None:
    """Address space, file size, core dumps and open files: set first thing in the runner, before torch loads."""
    _set_limit(resource.RLIMIT_AS, (limits.base_memory_mb + limits.memory_mb) * MB)
    _set_limit(resource.RLIMIT_FSIZE, limits.file_mb * MB)
    _set_limit(resource.RLIMIT_CORE, 0)
    _set_limit(resource.RLIMIT_NOFILE, 256)


def start_cpu_budget(seconds: float) -> None:
    """CPU seconds from now (the torch import is not charged): SIGXCPU at the budget, SIGKILL a second later."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 1))


def _process_owners() -> Iterator[tuple[int, int]]:
    """(pid, uid) of every live process; zombies (dead, waiting to be reaped, holding nothing) are left out."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            uid = entry.stat().st_uid
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            yield int(entry.name), uid


def live_processes_of(uid: int) -> list[int]:
    """The pids of every live process owned by ``uid``."""
    return [pid for pid, owner in _process_owners() if owner == uid]


def _mount(libc: ctypes.CDLL, source: str | None, target: str, flags: int) -> None:
    if libc.mount(source and source.encode(), target.encode(), None, flags, None) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


def private_mounts(workdirs: list[Path]) -> bool:
    """In a new mount namespace (root only), make the world-writable directories read-only, the workdirs excepted.

    Returns False, changing nothing, where namespaces are not allowed; writes outside are then only detected.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    _mount(libc, None, "/", MS_REC | MS_PRIVATE)  # nothing done here propagates back to the host
    for path in SHARED_WRITABLE:
        if os.path.isdir(path) and not os.path.islink(path):
            _mount(libc, path, path, MS_BIND | MS_REC)
            _mount(libc, None, path, MS_BIND | MS_REMOUNT | MS_RDONLY)
    for workdir in workdirs:  # a bind of the workdir onto itself, then made writable again: a separate mount
        _mount(libc, str(workdir), str(workdir), MS_BIND)
        _mount(libc, None, str(workdir), MS_BIND | MS_REMOUNT)
    return True


def private_network() -> bool:
    """In a new network namespace (root only) the process sees only a loopback that is down: no connection at all.

    Returns False, changing nothing, where namespaces are not allowed.
    """
    return ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET) == 0


def drop_privileges(settings: ChildSettings, workdirs: list[Path]) -> None:
    """Cap the process count and, if started as root, become the run's own uid with no way back to privileges.

    RLIMIT_NPROC counts every process (and thread) of the real uid and is not enforced for root, hence the switch.
    Without root we stay ourselves and allow our current count plus ``max_processes``.
    """
    limits = settings.limits
    if settings.uid is None:
        _set_limit(resource.RLIMIT_NPROC, len(live_processes_of(os.getuid())) + limits.max_processes)
        return
    _set_limit(resource.RLIMIT_NPROC, limits.max_processes)
    private_mounts(workdirs)
    private_network()
    os.setgroups([])
    os.setresgid(settings.uid, settings.uid, settings.uid)
    os.setresuid(settings.uid, settings.uid, settings.uid)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # no setuid binaries (su, mount)


# ---- parent side -------------------------------------------------------------------------------------------


def sandbox_uid() -> int | None:
    """A fresh unused uid for this run when we are root (so limits bind and leftovers can be found), else None."""
    return SANDBOX_UID_FIRST + secrets.randbelow(SANDBOX_UID_COUNT) if os.geteuid() == 0 else None


def _own_tree(path: Path, uid: int) -> None:
    for p in [path, *path.rglob("*")]:
        os.chown(p, uid, uid, follow_symlinks=False)


def _environment(workdir: Path, settings: ChildSettings) -> dict[str, str]:
    """Only what the runner needs: no secrets of the parent, one thread per library, home and temp in the workdir."""
    src_root = Path(__file__).resolve().parents[3]  # .../src, so `tfdojo` imports even without an install
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir / "tmp"),
        "PYTHONPATH": str(src_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        SETTINGS_ENV: settings.to_env(),
    }


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_leftovers(settings: ChildSettings) -> None:
    """Kill every process of the run's uid (children that left the session included), until none is left."""
    if settings.uid is None:
        return
    for _ in range(100):
        pids = live_processes_of(settings.uid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _tail(path: Path, limit: int) -> str:
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - limit))
        return f.read(limit).decode("utf-8", errors="replace")


def _head(path: Path, limit: int) -> str:
    with path.open("rb") as f:
        return f.read(limit).decode("utf-8", errors="replace")


def _wait(pid: int, wall_s: float) -> tuple[int | None, float]:
    """(wait status or None on timeout, CPU seconds of the runner) polling with wait4 to get its rusage."""
    deadline = time.monotonic() + wall_s
    delay = 0.005
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            return None, 0.0
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def run_sandboxed(argv: list[str], run_root: Path, workdirs: list[Path], limits: SandboxLimits) -> SandboxRun:
    """Run ``argv`` (the runner) confined, with ``workdirs[0]`` as cwd; everything in ``run_root`` besides the
    workdirs and the captured output afterwards counts as a write outside the sandbox (``escaped``)."""
    settings = ChildSettings(limits=limits, uid=sandbox_uid(), token=secrets.token_hex(8))
    for workdir in workdirs:
        (workdir / "tmp").mkdir(exist_ok=True)
        if settings.uid is not None:
            _own_tree(workdir, settings.uid)
    out_path, err_path = run_root / ".stdout", run_root / ".stderr"
    start = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            argv,
            cwd=workdirs[0],
            env=_environment(workdirs[0], settings),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )
        status = None
        try:
            status, cpu_s = _wait(proc.pid, limits.wall_limit_s)
        finally:  # also when interrupted: never leave a sandbox running
            _kill_group(proc.pid)
            if status is None:
                _, final_status, usage = os.wait4(proc.pid, 0)
                cpu_s = usage.ru_utime + usage.ru_stime
            _kill_leftovers(settings)
        timed_out = status is None
        proc.returncode = os.waitstatus_to_exitcode(final_status if timed_out else status)
    known = {out_path.name, err_path.name, *(w.name for w in workdirs)}
    escaped = tuple(sorted(p.name for p in run_root.iterdir() if p.name not in known))
    return SandboxRun(
        returncode=proc.returncode,
        stdout=_head(out_path, limits.output_bytes * len(workdirs)),
        stderr=_tail(err_path, limits.output_bytes),
        timed_out=timed_out,
        cpu_s=cpu_s,
        wall_s=time.monotonic() - start,
        escaped=escaped,
    )


# Starts the runner without executing the __init__ of tfdojo and tfdojo.practice (the trainer's imports: pydantic,
# the bank, the calculators — a second per run that a sandbox does not need): empty package stubs with the real
# __path__ let their submodules import as usual.
RUNNER_BOOTSTRAP = """
import pathlib, sys, types
for name in ("tfdojo", "tfdojo.practice", "tfdojo.practice.code"):
    stub = types.ModuleType(name)
    stub.__path__ = [str(pathlib.Path(sys.argv[1]).joinpath(*name.split(".")))]
    sys.modules[name] = stub
sys.argv.pop(1)
from tfdojo.practice.code.runner import main
main()
"""


def runner_argv(*args: str) -> list[str]:
    """``python -P -s -c BOOTSTRAP src args``: the runner, with no script directory or user site on sys.path."""
    return [sys.executable, "-P", "-s", "-c", RUNNER_BOOTSTRAP, str(Path(__file__).resolve().parents[3]), *args]
