"""One lab experiment: a claim, how it is measured, and the bank questions it answers by running it."""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path

from tfdojo.lab.result import LabResult


@dataclass(frozen=True)
class Experiment:
    """One claim and the module (``tfdojo.lab.<module>``) whose ``run(out, quick=...)`` measures it."""

    name: str
    module: str
    claim: str
    method: str
    questions: tuple[str, ...]
    weights: str = "none"  # the real weights it loads, or "none" (synthetic inputs / tiny trained models)

    def run(self, out: Path, *, quick: bool = False) -> LabResult:
        """Measure the claim; write nothing but the figures (the CLI writes the JSON)."""
        start = time.perf_counter()
        finding = importlib.import_module(f"tfdojo.lab.{self.module}").run(out, quick=quick)
        return LabResult(
            name=self.name,
            claim=self.claim,
            method=self.method,
            holds=bool(finding.holds),
            numbers=finding.numbers,
            figures=finding.figures,
            questions=list(self.questions),
            quick=quick,
            seconds=round(time.perf_counter() - start, 2),
        )
