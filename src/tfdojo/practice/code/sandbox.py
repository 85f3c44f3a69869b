"""Running one grading: the judge (trusted, outside) and the submission's worker (inside the jail), joined by pipes.

The parent starts both at once, each importing torch in parallel: the judge with the hidden tests, the worker
through ``jail.py`` inside namespaces, a cgroup and a tmpfs of its own. It reads the judge's verdict (the worker
cannot write there), stops the jail, kills whatever is left in the run's cgroup and removes it. Every run first
removes leftovers of runs whose grading process was killed. Which layers are active depends on the machine (root,
namespaces, a writable cgroup hierarchy): ``Containment`` records them and what they measured.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

MB = 1 << 20
CODE_DIR = Path(__file__).resolve().parent
SRC_ROOT = CODE_DIR.parents[2]  # .../src
RUNNER_FILES = ("worker.py", "channel.py", "forbidden.py")
RUN_PREFIX = "tfdojo-sandbox-"
RUN_NAME = re.compile(rf"^{RUN_PREFIX}(\d+)-[0-9a-f]+$")
# Unused uids far above any real account (uid_t is 32-bit); one is drawn per run so runs never share a count.
SANDBOX_UID_FIRST = 1_900_000_000
SANDBOX_UID_COUNT = 100_000_000
CGROUP_ROOT = Path("/sys/fs/cgroup")
SPARE_ENV = "TFDOJO_SANDBOX_SPARE"  # "0": no warm spare (each grading starts its own run)
MAX_MEMORY_MB = 4096  # the cgroup limit while a spare waits; the job's limit is set when it is taken
SYSTEM_BINDS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/ld.so.cache")


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. The cgroup holds ``resident_base_mb`` (python + torch: a whole run of the rmsnorm
    reference peaked at 180 MB, measured) plus the exercise's ``memory_mb`` for all its processes together; each
    process also gets an address-space rlimit."""

    cpu_s: float = 20.0
    memory_mb: int = 1024
    resident_base_mb: int = 640
    address_space_mb: int = 2560
    wall_s: float | None = None
    max_processes: int = 16
    file_mb: int = 16
    disk_mb: int = 64
    inodes: int = 4096
    open_files: int = 64

    @property
    def wall_limit_s(self) -> float:
        """The wall-clock timeout: given, or room for two torch imports on a busy machine plus 3x the CPU time."""
        return self.wall_s if self.wall_s is not None else 60.0 + 3.0 * self.cpu_s

    @property
    def memory_bytes(self) -> int:
        """The memory limit of the whole run (every process, tmpfs and shared memory included)."""
        return (self.resident_base_mb + self.memory_mb) * MB


@dataclass(frozen=True)
class Containment:
    """Which layers held a run, and what they measured (None: the layer was not active)."""

    layers: tuple[str, ...]
    missing: tuple[str, ...]
    uid: int | None = None
    memory_limit_bytes: int | None = None
    memory_peak_bytes: int | None = None
    oom_kills: int = 0
    pids_limit: int | None = None
    pids_peak: int | None = None
    forks_refused: int = 0
    disk_limit_bytes: int | None = None
    disk_used_bytes: int | None = None
    inodes_limit: int | None = None
    inodes_used: int | None = None


@dataclass(frozen=True)
class SandboxRun:
    """What came back: the judge's report (None if it gave none), how the worker ended, and the containment."""

    report: dict[str, Any] | None
    judge_stderr: str
    worker_status: int | None  # None while it ran until the parent stopped the run
    worker_cpu_s: float
    jail_error: str | None
    timed_out: bool
    containment: Containment

    @property
    def worker_signal(self) -> int | None:
        """The signal that killed the worker, if one did."""
        s = self.worker_status
        return os.WTERMSIG(s) if s is not None and os.WIFSIGNALED(s) else None


# ---- what the machine allows -------------------------------------------------------------------------------

NAMESPACE_PROBE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x20000 | 0x4000000 | 0x8000000 | 0x20000000 | 0x40000000) != 0:
    sys.exit(1)
pid = os.fork()
if pid == 0:
    ok = libc.mount(None, b"/", None, 16384 | (1 << 18), None) == 0
    ok = ok and libc.mount(b"t", b"/tmp", b"tmpfs", 0, b"size=4k,nr_inodes=8") == 0
    ok = ok and libc.mount(b"proc", b"/tmp", b"proc", 0, None) == 0
    os._exit(0 if ok else 1)
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


@cache
def namespaces_allowed() -> bool:
    """Whether this process may build the jail: root, and pid/mount/net namespaces with tmpfs and proc mounts."""
    if os.geteuid() != 0:
        return False
    probe = subprocess.run([sys.executable, "-I", "-c", NAMESPACE_PROBE], capture_output=True, timeout=60)
    return probe.returncode == 0


def _own_cgroup(controller: str | None) -> str | None:
    """This process's cgroup path in the v1 hierarchy of ``controller`` (or in v2 when None)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if (controller is None and controllers == "") or (controller in controllers.split(",")):
                return path
    return None


def _probe_dir(parent: Path, files: tuple[str, ...]) -> bool:
    probe = parent / f"{RUN_PREFIX}probe-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        probe.mkdir()
    except OSError:
        return False
    try:
        return all((probe / f).exists() for f in files)
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


@cache
def cgroup_parents() -> tuple[str, dict[str, Path]] | None:
    """("v2" or "v1", controller -> the directory runs' cgroups are made in), or None where none is writable."""
    if os.geteuid() != 0:
        return None
    v2 = _own_cgroup(None)
    if v2 is not None and (CGROUP_ROOT / "cgroup.controllers").exists():
        parent = CGROUP_ROOT / v2.lstrip("/")
        if _probe_dir(parent, ("memory.max", "pids.max")):
            return "v2", {"memory": parent, "pids": parent}
    dirs = {}
    for controller, file in (("memory", "memory.limit_in_bytes"), ("pids", "pids.max")):
        own = _own_cgroup(controller)
        parent = CGROUP_ROOT / controller / (own or "/").lstrip("/")
        if own is None or not _probe_dir(parent, (file,)):
            return None
        dirs[controller] = parent
    return "v1", dirs


# ---- the run's cgroup --------------------------------------------------------------------------------------


def _read_int(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().split()[0])
    return None


def _read_key(path: Path, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    return 0


@dataclass
class RunCgroup:
    """The run's cgroup(s): one memory limit and one process limit for every process of the run."""

    version: str
    memory: Path
    pids: Path

    @classmethod
    def create(cls, name: str, limits: SandboxLimits) -> RunCgroup | None:
        found = cgroup_parents()
        if found is None:
            return None
        version, parents = found
        group = cls(version, parents["memory"] / name, parents["pids"] / name)
        for d in {group.memory, group.pids}:
            d.mkdir()
        pids = str(limits.max_processes + 16)  # python and torch start a few threads of their own
        if version == "v2":
            (group.memory / "memory.max").write_text(str(limits.memory_bytes))
            with contextlib.suppress(OSError):
                (group.memory / "memory.swap.max").write_text("0")
            (group.pids / "pids.max").write_text(pids)
        else:
            (group.memory / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
            with contextlib.suppress(OSError):  # no swap either, where swap is accounted
                (group.memory / "memory.memsw.limit_in_bytes").write_text(str(limits.memory_bytes))
            (group.pids / "pids.max").write_text(pids)
        return group

    @property
    def procs(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in dict.fromkeys((self.memory, self.pids))]

    def set_memory(self, limit: int) -> None:
        """The job's memory limit (v1 keeps memsw >= limit, so the order of the two writes depends on the way)."""
        if self.version == "v2":
            (self.memory / "memory.max").write_text(str(limit))
            return
        files = [self.memory / "memory.limit_in_bytes", self.memory / "memory.memsw.limit_in_bytes"]
        for file in files if limit < (_read_int(files[0]) or 0) else files[::-1]:
            with contextlib.suppress(OSError):
                file.write_text(str(limit))

    def measure(self) -> dict[str, int | None]:
        v2 = self.version == "v2"
        m, p = self.memory, self.pids
        return {
            "memory_limit_bytes": _read_int(m / ("memory.max" if v2 else "memory.limit_in_bytes")),
            "memory_peak_bytes": _read_int(m / ("memory.peak" if v2 else "memory.max_usage_in_bytes")),
            "oom_kills": _read_key(m / ("memory.events" if v2 else "memory.oom_control"), "oom_kill"),
            "pids_limit": _read_int(p / "pids.max"),
            "pids_peak": _read_int(p / "pids.peak"),
            "forks_refused": _read_key(p / "pids.events", "max"),
        }

    def destroy(self) -> None:
        """Kill every process still in the cgroup, then remove it."""
        kill_cgroup([Path(f).parent for f in self.procs])


def kill_cgroup(dirs: list[Path]) -> None:
    for _ in range(300):
        pids = (
            [p for d in dirs for p in (d / "cgroup.procs").read_text().split()] if all(d.exists() for d in dirs) else []
        )
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        if not pids:
            for d in dirs:
                with contextlib.suppress(FileNotFoundError, OSError):
                    d.rmdir()
            if not any(d.exists() for d in dirs):
                return
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> list[str]:
    """Remove what runs of dead grading processes left (cgroups with their processes, plain work dirs)."""
    removed = []
    found = cgroup_parents()
    parents = list(dict.fromkeys(found[1].values())) if found else []
    for parent in parents:
        for d in parent.iterdir():
            match = RUN_NAME.match(d.name)
            if match and d.is_dir() and not _alive(int(match.group(1))):
                kill_cgroup([d])
                removed.append(str(d))
    for d in Path(tempfile.gettempdir()).glob(f"{RUN_PREFIX}*"):
        match = RUN_NAME.match(d.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    return removed


# ---- one run -----------------------------------------------------------------------------------------------


def sandbox_uid() -> int | None:
    """A fresh unused uid for this run when we are root (so limits bind and leftovers can be found), else None."""
    return SANDBOX_UID_FIRST + secrets.randbelow(SANDBOX_UID_COUNT) if os.geteuid() == 0 else None


def _binds() -> list[str]:
    """What the worker's root shows, read-only: system libraries, the interpreter and its site-packages."""
    paths = [
        *SYSTEM_BINDS,
        sys.base_prefix,
        sys.prefix,
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
    ]
    paths.append(str(Path(sys.executable).parent))
    keep: list[str] = []
    for p in sorted(dict.fromkeys(os.path.abspath(p) for p in paths if os.path.lexists(p))):
        if not any(p == k or p.startswith(k + "/") for k in keep):
            keep.append(p)
    return keep


def _masks(binds: list[str]) -> list[str]:
    """tfdojo's own directory, wherever a bound directory contains it (a non-editable install)."""
    package = str(SRC_ROOT / "tfdojo")
    return [package] if any(package.startswith(b + "/") for b in binds) else []


def _environment() -> dict[str, str]:
    """Only what the judge needs: no secrets of the parent, one thread per library."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
    }


# The judge starts without executing the __init__ of tfdojo and tfdojo.practice (the trainer's imports: pydantic,
# the bank, the calculators — a second per run the judge does not need): empty package stubs with the real
# __path__ let their submodules import as usual. It dies with the grading process.
JUDGE_BOOTSTRAP = """
import ctypes, os, pathlib, sys, types
ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)
if os.getppid() != int(sys.argv[1]):
    os._exit(70)
sys.path.insert(0, sys.argv[2])
for name in ("tfdojo", "tfdojo.practice", "tfdojo.practice.code"):
    stub = types.ModuleType(name)
    stub.__path__ = [str(pathlib.Path(sys.argv[2]).joinpath(*name.split(".")))]
    sys.modules[name] = stub
from tfdojo.practice.code.judge import main
main(sys.argv[3:])
"""


def _layers(namespaces: bool, cgroup: RunCgroup | None, uid: int | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    wanted = {
        "process boundary (judge outside, worker inside)": True,
        "rlimits (address space, CPU, file size, open files)": True,
        "own uid": uid is not None,
        "pid namespace": namespaces,
        "new root: read-only binds, no answer key": namespaces,
        "network namespace": namespaces,
        "tmpfs work dir (size, inodes), /tmp and /dev/shm in it": namespaces,
        f"cgroup {cgroup.version if cgroup else ''} memory limit".replace("  ", " "): cgroup is not None,
        "cgroup process limit": cgroup is not None,
    }
    return tuple(k for k, v in wanted.items() if v), tuple(k for k, v in wanted.items() if not v)


def _stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; always reaped."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Run:
    """One started run: the judge and the jail (each importing torch) waiting for a job, and the run's cgroup."""

    name: str
    judge: subprocess.Popen[bytes]
    jail: subprocess.Popen[bytes]
    cgroup: RunCgroup | None
    uid: int | None
    namespaces: bool
    plain_dir: Path | None
    owner: int = field(default_factory=os.getpid)

    @classmethod
    def start(cls) -> Run:
        """Start the judge and the jailed worker; neither knows the exercise or the submission yet.

        They are spawned from one long-lived thread: their parent-death signal fires when the thread that forked
        them ends, and a spare started by a short-lived request thread would die under the next grading."""
        return _SPAWNER.submit(cls._start).result()

    @classmethod
    def _start(cls) -> Run:
        name = f"{RUN_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        namespaces, uid = namespaces_allowed(), sandbox_uid()
        cgroup = RunCgroup.create(name, SandboxLimits(memory_mb=MAX_MEMORY_MB))
        plain_dir = None if namespaces else Path(tempfile.gettempdir()) / name
        if plain_dir is not None:
            plain_dir.mkdir(mode=0o711)
        binds = _binds()
        ends = [*os.pipe(), *os.pipe()]  # to the worker (read, write), to the judge (read, write)
        to_worker_r, to_worker_w, to_judge_r, to_judge_w = ends
        limits = SandboxLimits()
        config = {
            "parent": os.getpid(),
            "channel": [to_worker_r, to_judge_w],
            "cgroups": cgroup.procs if cgroup else [],
            "namespaces": namespaces,
            "uid": uid,
            "python": sys.executable,
            "runner": {f: str(CODE_DIR / f) for f in RUNNER_FILES},
            "binds": binds,
            "masks": _masks(binds),
            "disk_bytes": limits.disk_mb * MB,
            "inodes": limits.inodes,
            "plain_dir": str(plain_dir) if plain_dir else None,
            "limits": {  # until the job: the worker tightens address space and CPU time when it starts
                "as_bytes": (limits.address_space_mb + MAX_MEMORY_MB) * MB,
                "file_bytes": limits.file_mb * MB,
                "open_files": limits.open_files,
                "processes": limits.max_processes + 24,  # above the cgroup's count, which measures where active
                "cpu_hard_s": 600,
            },
        }
        env = _environment()
        judge = subprocess.Popen(
            [sys.executable, "-P", "-s", "-c", JUDGE_BOOTSTRAP, str(os.getpid()), str(SRC_ROOT), str(to_judge_r),
             str(to_worker_w)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            pass_fds=(to_judge_r, to_worker_w), start_new_session=True,
        )  # fmt: skip
        try:
            jail = subprocess.Popen(
                [sys.executable, "-I", str(CODE_DIR / "jail.py")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                pass_fds=(to_worker_r, to_judge_w), start_new_session=True,
            )  # fmt: skip
        except OSError:
            judge.kill()
            judge.wait()
            raise
        finally:
            for fd in ends:  # closed once only: another thread may own the same numbers right after
                os.close(fd)
        assert jail.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            jail.stdin.write(json.dumps(config).encode())
            jail.stdin.close()
        jail.stdin = None
        return cls(name, judge, jail, cgroup, uid, namespaces, plain_dir)

    def alive(self) -> bool:
        return self.judge.poll() is None and self.jail.poll() is None

    def discard(self) -> None:
        """Kill both sides and remove the cgroup and any directory."""
        for proc in (self.judge, self.jail):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        if self.cgroup:
            self.cgroup.destroy()
        if self.plain_dir is not None:
            shutil.rmtree(self.plain_dir, ignore_errors=True)

    def grade(self, job: dict[str, Any], limits: SandboxLimits) -> SandboxRun:
        """Hand the judge its job, wait for its report (or the wall-clock limit), stop the jail, measure, clean."""
        if self.cgroup:
            self.cgroup.set_memory(limits.memory_bytes)
        layers, missing = _layers(self.namespaces, self.cgroup, self.uid)
        timed_out, out, err, jail_out, jail_err = False, b"", b"", b"", b""
        try:
            try:
                out, err = self.judge.communicate(json.dumps(job).encode() + b"\n", timeout=limits.wall_limit_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                self.judge.kill()
                out, err = self.judge.communicate()
            _stop(self.jail, grace_s=3.0)
            jail_out, jail_err = self.jail.communicate()
        finally:  # also when interrupted: never leave a run behind
            measured = self.cgroup.measure() if self.cgroup else {}
            self.discard()
        status = _parse_status(jail_out)
        containment = Containment(
            layers=layers,
            missing=missing,
            uid=self.uid,
            disk_limit_bytes=limits.disk_mb * MB if self.namespaces else None,
            disk_used_bytes=status.get("disk_bytes") if type(status.get("disk_bytes")) is int else None,
            inodes_limit=limits.inodes if self.namespaces else None,
            inodes_used=status.get("inodes") if type(status.get("inodes")) is int else None,
            **{k: v for k, v in measured.items() if v is not None},
        )
        jail_error = status.get("error") if isinstance(status.get("error"), str) else None
        if jail_error is not None or not status:
            jail_error = f"{jail_error or 'the jail gave no report'}: {jail_err.decode(errors='replace')[-500:]}"
        worker_status = status.get("status")
        return SandboxRun(
            report=_parse_report(out),
            judge_stderr=err.decode(errors="replace")[-4000:],
            worker_status=worker_status if type(worker_status) is int and not status.get("stopped") else None,
            worker_cpu_s=float(status.get("cpu_s") or 0.0),
            jail_error=jail_error,
            timed_out=timed_out,
            containment=containment,
        )


_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfdojo-sandbox-spawner")


def _new_spawner() -> None:
    """A forked child has no spawner thread (only the parent's record of one): give it its own."""
    global _SPAWNER
    _SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfdojo-sandbox-spawner")


os.register_at_fork(after_in_child=_new_spawner)
_spare: list[Run] = []
_spare_lock = threading.Lock()


def _take_run() -> Run:
    """The warm spare when one is ready (started by the previous grading), else a fresh run."""
    with _spare_lock:
        spare = _spare.pop() if _spare else None
    if spare is not None and spare.owner != os.getpid():
        spare = None  # inherited through fork: the parent's, not ours to use or stop
    if spare is not None and spare.alive():
        return spare
    if spare is not None:
        spare.discard()
    return Run.start()


def _refill() -> None:
    """Start the next grading's run now, so that its torch imports happen while the person reads the feedback."""
    if os.environ.get(SPARE_ENV) == "0":
        return
    with _spare_lock:
        if _spare:
            return
        _spare.append(Run.start())


@atexit.register
def discard_spare() -> None:
    """Stop the warm spare (at exit, or when a test wants none)."""
    with _spare_lock:
        spares = list(_spare)
        _spare.clear()
    for run in spares:
        if run.owner == os.getpid():  # a forked child's copy of the list is not its own to stop
            run.discard()


def run_sandboxed(
    exercise_dir: Path, entry: tuple[str, ...], forbidden: tuple[str, ...], sources: list[str], limits: SandboxLimits
) -> SandboxRun:
    """Grade ``sources`` against the exercise's hidden tests: the judge outside, the worker jailed."""
    remove_leftovers()
    run = _take_run()
    job = {
        "exercise_dir": str(exercise_dir),
        "entry": list(entry),
        "sources": sources,
        "forbidden": list(forbidden),
        "cpu_s": limits.cpu_s,
        "as_bytes": (limits.address_space_mb + limits.memory_mb) * MB,
    }
    try:
        return run.grade(job, limits)
    finally:
        with contextlib.suppress(OSError):
            _refill()


def _parse_status(raw: bytes) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        data = json.loads(raw.decode(errors="replace").strip().splitlines()[-1])
        if isinstance(data, dict):
            return data
    return {}


def _parse_report(raw: bytes) -> dict[str, Any] | None:
    with contextlib.suppress(ValueError, IndexError):
        data = json.loads(raw.decode(errors="replace").strip().splitlines()[-1])
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            return data
    return None
