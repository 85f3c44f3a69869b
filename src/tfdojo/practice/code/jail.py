"""The sandbox around the submission's process: ``python -I jail.py`` with its configuration on stdin.

Stdlib only; run by the grading parent, never imported by tfdojo. With namespaces (root) it builds, in order:

    jail (host pid ns, root)        joins the run's cgroups, unshares pid/mount/net/ipc/uts namespaces, forks
      init (pid 1 of the new ns)    builds a new root: read-only binds of the interpreter and libraries only,
        |                           a private /proc, a minimal /dev, one size- and inode-limited tmpfs for
        |                           /sandbox/work, /tmp and /dev/shm, the worker's three files; pivots into it
        worker (pid 2, own uid)     rlimits, uid switch, no_new_privs, execs ``python -I /runner/worker.py``

When init exits, the kernel kills every process left in the namespace (zombies and setsid'd children included);
init exits as soon as the worker does, or when the jail is told to stop (SIGTERM), after killing the rest itself
and measuring the tmpfs. The jail writes one JSON line: the worker's wait status, CPU seconds and the disk used.
Without namespaces the worker runs in a directory on disk, confined by rlimits alone (see docs/exercises.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import platform
import resource
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = (
    0x20000,
    0x4000000,
    0x8000000,
    0x20000000,
    0x40000000,
)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    8,
    32,
    4096,
    16384,
    1 << 18,
)
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
DEVICES = ("null", "zero", "full", "random", "urandom")
NEW_ROOT_AT = ("/mnt", "/tmp")  # any existing directory will do: the mount is private to the namespace
libc = ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if x is None else x.encode() for x in (source, target, fstype, data)]
    _check(libc.mount(enc[0], enc[1], enc[2], flags, enc[3]), f"mount {target}")


def die_with_parent(parent: int | None) -> None:
    """SIGKILL when the parent dies; leave at once if it already has (pid 1 of a namespace cannot tell: its
    parent is outside, so getppid is 0; a run orphaned in that instant is killed with its cgroup by the next run)."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(70)


def bind_readonly(host: str, root: str) -> None:
    """Make ``host`` appear read-only at the same path under ``root`` (a symlink is copied as a symlink)."""
    target = root + host
    if os.path.islink(host):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(host), target)
        return
    if os.path.isdir(host):
        os.makedirs(target, exist_ok=True)
    elif os.path.exists(host):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        Path(target).touch()
    else:
        return
    mount(host, target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def build_root(cfg: dict[str, Any]) -> str:
    """The worker's file system, assembled under a private tmpfs (see the module docstring)."""
    root = next(p for p in NEW_ROOT_AT if os.path.isdir(p))
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here propagates back to the host
    mount("tfdojo-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0755")
    os.makedirs(root + "/dev")
    mount("tfdojo-dev", root + "/dev", "tmpfs", MS_NOSUID, "size=64k,mode=0755")
    # the writable tmpfs first, the host binds after: an interpreter or venv that lives under /tmp (a CI clone)
    # is bound on top of the private /tmp instead of being hidden by it
    sandbox = root + "/sandbox"
    os.makedirs(sandbox)
    mount("tfdojo-work", sandbox, "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={cfg['disk_bytes']},nr_inodes={cfg['inodes']},mode=0755")  # fmt: skip
    uid = cfg["uid"] if cfg["uid"] is not None else os.getuid()
    for name, mode in (("work", 0o700), ("tmp", 0o700), ("shm", 0o700)):
        os.makedirs(f"{sandbox}/{name}")
        os.chown(f"{sandbox}/{name}", uid, uid)
        os.chmod(f"{sandbox}/{name}", mode)
    for inner, outer in (("tmp", "/tmp"), ("shm", "/dev/shm")):  # one tmpfs, so one size and inode budget
        os.makedirs(root + outer, exist_ok=True)
        mount(f"{sandbox}/{inner}", root + outer, None, MS_BIND)
    for host in cfg["binds"]:
        bind_readonly(host, root)
    for hidden in cfg["masks"]:  # tfdojo itself, should it sit inside a bound directory
        if os.path.isdir(root + hidden):
            mount("tfdojo-mask", root + hidden, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=0555")
    for name in DEVICES:
        Path(root + "/dev/" + name).touch()
        mount("/dev/" + name, root + "/dev/" + name, None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):  # fmt: skip
        os.symlink(target, f"{root}/dev/{name}")
    os.makedirs(root + "/proc")
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
    os.makedirs(root + "/runner")
    for name, host in cfg["runner"].items():
        shutil.copyfile(host, f"{root}/runner/{name}")
    os.makedirs(root + "/.old")
    pivot(root)
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return "/sandbox/work"


def pivot(root: str) -> None:
    """Make ``root`` the file system root and drop every host mount (chroot-with-move where pivot_root is unknown)."""
    os.chdir(root)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is not None and libc.syscall(number, b".", b".old") == 0:
        os.chdir("/")
        _check(libc.umount2(b"/.old", MNT_DETACH), "umount the old root")
        os.rmdir("/.old")
        return
    mount(root, "/", None, 8192)  # MS_MOVE
    os.chroot(".")
    os.chdir("/")


def exec_worker(cfg: dict[str, Any], workdir: str, runner: str, channel: tuple[int, int]) -> None:
    """In the worker's process: limits, fds 3/4 for the channel, the uid switch, then the worker script."""
    limits = cfg["limits"]
    for kind, value in (
        (resource.RLIMIT_AS, limits["as_bytes"]),
        (resource.RLIMIT_FSIZE, limits["file_bytes"]),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, limits["open_files"]),
        (resource.RLIMIT_CPU, limits["cpu_hard_s"]),
    ):
        resource.setrlimit(kind, (value, value))
    if cfg["uid"] is not None:  # RLIMIT_NPROC is not enforced for root, hence the uid switch
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in channel]  # so that fds 3 and 4 cannot overwrite them
    os.dup2(high[0], 3)
    os.dup2(high[1], 4)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(5, 65536)
    os.chdir(workdir)
    if cfg["uid"] is not None:
        os.setgroups([])
        os.setresgid(cfg["uid"], cfg["uid"], cfg["uid"])
        os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": "/tmp", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
    os.execve(cfg["python"], [cfg["python"], "-I", f"{runner}/worker.py"], env)


def reap(worker: int) -> tuple[int | None, float]:
    """Wait for the worker (reaping every other child on the way): its wait status and CPU seconds."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            return None, 0.0
        if pid == worker:
            return status, usage.ru_utime + usage.ru_stime


def init_main(cfg: dict[str, Any], channel: tuple[int, int], report: int) -> None:
    """Pid 1 of the run: build the root, start the worker, wait, kill the rest, report."""
    die_with_parent(None)
    try:
        workdir = build_root(cfg)
    except OSError as e:
        os.write(report, json.dumps({"status": None, "cpu_s": 0.0, "error": f"sandbox set-up failed: {e}"}).encode())
        os._exit(1)
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: (stopped.append(True), os.kill(-1, signal.SIGKILL)))  # all but init
    worker = os.fork()
    if worker == 0:
        try:
            os.close(report)
            exec_worker(cfg, workdir, "/runner", channel)
        finally:
            os._exit(127)
    for fd in channel:
        os.close(fd)
    status, cpu_s = reap(worker)
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGKILL)
    disk = os.statvfs("/sandbox")
    used = (disk.f_blocks - disk.f_bfree) * disk.f_frsize
    message = {"status": status, "cpu_s": cpu_s, "stopped": bool(stopped), "disk_bytes": used,
               "inodes": disk.f_files - disk.f_ffree}  # fmt: skip
    os.write(report, json.dumps(message).encode())
    os._exit(0)


def plain_main(cfg: dict[str, Any], channel: tuple[int, int]) -> dict[str, Any]:
    """Without namespaces: the worker in a directory of its own on disk, rlimits only."""
    base = Path(cfg["plain_dir"])
    workdir, runner = base / "work", base / "runner"
    uid = cfg["uid"] if cfg["uid"] is not None else os.getuid()
    workdir.mkdir()
    runner.mkdir()
    os.chown(workdir, uid, uid)
    for name, host in cfg["runner"].items():
        shutil.copyfile(host, runner / name)
    worker = os.fork()
    if worker == 0:
        try:
            os.setsid()
            exec_worker(cfg, str(workdir), str(runner), channel)
        finally:
            os._exit(127)
    for fd in channel:
        os.close(fd)
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: (stopped.append(True), os.killpg(worker, signal.SIGKILL)))
    status, cpu_s = reap(worker)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker, signal.SIGKILL)
    return {"status": status, "cpu_s": cpu_s, "stopped": bool(stopped)}


def main() -> None:
    cfg = json.loads(sys.stdin.read())
    die_with_parent(cfg["parent"])
    channel = (cfg["channel"][0], cfg["channel"][1])
    for procs in cfg["cgroups"]:  # join before forking: every process of the run is counted
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    if not cfg["namespaces"]:
        print(json.dumps(plain_main(cfg, channel)), flush=True)
        return
    _check(libc.unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    read_end, write_end = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(read_end)
        init_main(cfg, channel, write_end)
    os.close(write_end)
    for fd in channel:
        os.close(fd)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(init, signal.SIGTERM))
    data = b""
    while chunk := os.read(read_end, 65536):
        data += chunk
    os.waitpid(init, 0)
    print(data.decode() or json.dumps({"status": None, "cpu_s": 0.0, "error": "the sandbox's init died"}), flush=True)


if __name__ == "__main__":
    main()
