"""``DIR/metrics.jsonl``: one JSON line per optimizer step, appended as training goes, trimmed on resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfdojo.train.checkpoint import atomic_write_text

METRICS = "metrics.jsonl"


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete line of the run's metrics (a line cut by a kill is dropped)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def keep_before(run_dir: Path, step: int) -> None:
    """Drop the lines of steps after ``step`` (they are redone after a resume or a rollback)."""
    rows = [r for r in read_metrics(run_dir) if r.get("step", 0) <= step]
    atomic_write_text(Path(run_dir) / METRICS, "".join(json.dumps(r) + "\n" for r in rows))


class MetricsWriter:
    """Appends one line per step and flushes it, so a kill loses at most the line being written."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / METRICS
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  (closed by close())

    def write(self, row: dict[str, Any]) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()
