"""What the trainer shows under a question that an experiment answers: the command that runs it and its figure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfdojo.lab.catalog import experiment, experiments_for

LAB_DIR = Path("lab-results")  # where `tfdojo lab run` writes NAME.json and NAME.png unless given --out


@dataclass(frozen=True)
class RunIt:
    """One experiment behind a question: its name, claim, the command, and its figure if a run left one."""

    name: str
    claim: str
    command: str
    figure: Path | None


def figure_of(name: str, lab_dir: Path = LAB_DIR) -> Path | None:
    """``lab_dir/NAME.png`` for a catalogued experiment when a run has written it, else None.

    The file name comes from the catalog, never from the caller's string, so no path can reach outside ``lab_dir``;
    an unknown name raises ConfigError.
    """
    path = lab_dir / f"{experiment(name).name}.png"
    return path if path.is_file() else None


def run_it(question_id: str, lab_dir: Path = LAB_DIR) -> list[RunIt]:
    """The experiments that answer ``question_id``, each with `tfdojo lab run NAME` and its figure (if any)."""
    return [
        RunIt(e.name, e.claim, f"tfdojo lab run {e.name}", figure_of(e.name, lab_dir))
        for e in experiments_for(question_id)
    ]
