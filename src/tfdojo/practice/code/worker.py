"""The submission's process: ``python -I worker.py CONFIG``, run inside the sandbox, never inside tfdojo.

It sees only its own directory (``submission_<i>.py`` files), this file, ``channel.py`` and ``forbidden.py``: no
reference solution, no hidden tests, no tfdojo. It imports each submission, tells the judge (channel fds 3 and
4) what loaded, then answers the judge's calls until the judge closes the channel. Whatever it sends is only a
claim the judge checks: this process decides nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import resource
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import channel  # noqa: E402
import forbidden  # noqa: E402
import torch  # noqa: E402 - after the path: channel and forbidden live next to this file

READ_FD, WRITE_FD = 3, 4
# Modules a submission may reasonably import, loaded before its code runs (and before the CPU budget starts).
PRELOAD = ("math", "cmath", "random", "itertools", "functools", "collections", "dataclasses", "typing", "heapq")


class WorkerPeer(channel.Peer):
    """The worker's end: errors carry the submission line they came from, replies the new forbidden uses."""

    def __init__(self, workdir: Path, guards: forbidden.RuntimeGuards) -> None:
        super().__init__(READ_FD, WRITE_FD)
        self.workdir, self.guards, self.reported = str(workdir), guards, 0
        self.reply_extra = self.new_violations

    def new_violations(self) -> dict[str, Any]:
        fresh = self.guards.violations[self.reported :]
        self.reported = len(self.guards.violations)
        return {"forbidden": [v.describe() for v in fresh]} if fresh else {}

    def describe(self, exc: BaseException) -> dict[str, Any]:
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(self.workdir)]
        return {**super().describe(exc), "line": lines[-1] if lines else None}


def import_submission(path: Path, name: str) -> ModuleType:
    """Execute one submission file as a fresh module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def start(peer: channel.Peer) -> dict[str, Any]:
    """Wait for the judge's start message (this process may be started ahead, as a warm spare): the sources, the
    forbidden names and the limits; write the sources into this directory and tighten the limits."""
    header, _ = channel.read_frame(READ_FD, peer.caps)
    sources, names = header.get("sources"), header.get("forbidden")
    if header.get("op") != "start" or not isinstance(sources, list) or not isinstance(names, list):
        os._exit(65)
    for index, source in enumerate(sources):
        (Path.cwd() / f"submission_{index}.py").write_text(str(source), encoding="utf-8")
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = int(used.ru_utime + used.ru_stime + float(header["cpu_s"])) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (int(header["as_bytes"]), int(header["as_bytes"])))
    return header


def main() -> None:
    """Import torch, wait for the start, import the submissions, send a hello, serve until the channel closes."""
    workdir = Path.cwd()
    torch.set_num_threads(1)
    for name in PRELOAD:
        importlib.import_module(name)
    roots = [Path(sys.base_prefix), Path(sys.prefix), Path(torch.__file__).parents[1], HERE]
    peer = WorkerPeer(workdir, forbidden.RuntimeGuards((), roots))
    try:
        job = start(peer)
    except channel.ChannelError:
        os._exit(0)  # a spare that was never used
    peer.guards = forbidden.RuntimeGuards([str(n) for n in job["forbidden"]], roots)
    peer.guards.install()
    modules = []
    for index in range(len(job["sources"])):
        try:
            module: Any = import_submission(workdir / f"submission_{index}.py", f"submission_{index}")
            loaded = {"load": None, "names": sorted(n for n in vars(module) if not n.startswith("_"))}
        except BaseException as e:  # noqa: BLE001 - any failure on import is reported, not fatal
            if os.getpid() != peer.owner:
                os._exit(0)
            module, loaded = ModuleType(f"submission_{index}"), {"load": peer.describe(e), "names": []}
        peer.export(module)
        modules.append(loaded)
    peer.reply({"op": "hello", "modules": modules}, b"")
    while True:
        try:
            header, blob = channel.read_frame(READ_FD, peer.caps)
        except channel.ChannelError:
            os._exit(0)  # the judge is done
        peer.serve(header, blob)


if __name__ == "__main__":
    main()
