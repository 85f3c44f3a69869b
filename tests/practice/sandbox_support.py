"""Helpers for the sandbox tests: processes by uid (zombies included), a toy exercise folder."""

from pathlib import Path

from tfdojo.practice.code.exercises import Exercise, load_exercise_dir


def processes_of(uid: int) -> list[tuple[int, str]]:
    """(pid, state) of every process whose real uid is ``uid``, in any state: zombies and zombie leaders too."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) == uid:
            found.append((int(entry.name), fields["State"].strip()))
    return found


def toy_exercise(root: Path, hidden_test: str, solution: str, *, time_limit_s: float = 2, memory_mb: int = 512,
                 forbidden: tuple[str, ...] = ()) -> Exercise:  # fmt: skip
    """A minimal exercise folder with one entry point ``f``."""
    folder = root / "toy"
    folder.mkdir()
    (folder / "exercise.toml").write_text(
        'title = "Toy"\nsection = "attention-maths"\ndifficulty = "easy"\nminutes = 1\nentry = ["f"]\n'
        f"forbidden = {list(forbidden)!r}\ntime_limit_s = {time_limit_s}\nmemory_mb = {memory_mb}\n".replace("'", '"')
    )
    (folder / "statement.md").write_text("Return the secret.\n")
    (folder / "starter.py").write_text("def f():\n    raise NotImplementedError\n")
    (folder / "solution.py").write_text(solution)
    (folder / "hidden_test.py").write_text(hidden_test)
    return load_exercise_dir(folder)
