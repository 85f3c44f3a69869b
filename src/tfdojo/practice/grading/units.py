"""The units a numeric answer may carry: each spelling maps to a kind (what is measured) and a factor to base units.

Kinds are the dimensions the calculators report: bytes, FLOP, params, tokens, s (seconds), nats, elements and
ratio (fractions, percentages, "×"), plus rates and densities written ``a/b`` (tokens/s, bytes/s, FLOP/token, …).
Byte prefixes follow the standards: GB = 10^9 bytes, GiB = 2^30 bytes. A bare B after a number is a billion
("7B"), never bytes: write "bytes" or a prefixed form (KB, GB, GiB, …) for bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SI_PREFIX = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
BINARY_PREFIX = {"K": 2**10, "k": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50, "E": 2**60}
TIME_FACTOR = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
TIME_FACTOR["d"] = 86400.0
RATIO_FACTOR = {"%": 0.01, "percent": 0.01, "×": 1.0, "x": 1.0, "fraction": 1.0}

_TIME = r"ns|us|µs|μs|ms|min(?:ute)?s?|s(?:ec(?:ond)?s?)?|h(?:ours?|rs?)?|d(?:ays?)?"
_AMOUNT = (
    r"(?P<bp>[kKMGTPE])(?P<bi>i)?B(?![A-Za-z])"  # KB, GiB, TB …
    r"|(?P<byte>bytes?)(?![A-Za-z])"
    r"|(?P<fp>[kKMGTPE])?(?P<flop>FLOP|[Ff]lop)[sS]?(?![A-Za-z])"  # FLOP, FLOPs, TFLOPs, flops
    r"|(?P<param>[Pp]aram(?:eter)?s?)(?![A-Za-z])"
    r"|(?P<token>[Tt]ok(?:en)?s?)(?![A-Za-z])"
    r"|(?P<nat>nats?)(?![A-Za-z])"
    r"|(?P<element>elements?)(?![A-Za-z])"
    r"|(?P<ratio>%|percent(?![A-Za-z])|fraction(?![A-Za-z])|×|x(?![A-Za-z]))"
    rf"|(?P<time>{_TIME})(?![A-Za-z])"
)
_PER = rf"(?P<per>[Tt]ok(?:en)?s?|bytes?|B|{_TIME})"
UNIT_PATTERN = rf"(?:{_AMOUNT})(?:\s*(?:/|\s+per\s+)\s*{_PER}(?![A-Za-z]))?"
AMOUNT_GROUPS = ("bp", "byte", "flop", "param", "token", "nat", "element", "ratio", "time")
_UNIT_RE = re.compile(rf"\s*{UNIT_PATTERN}\s*")


@dataclass(frozen=True)
class Unit:
    """A unit as written: the kind of quantity it measures and how many base units one of it is."""

    kind: str
    factor: float


def _time_factor(spelling: str) -> float:
    for short in ("ns", "us", "µs", "μs", "ms", "min"):
        if spelling.startswith(short):
            return TIME_FACTOR[short]
    return TIME_FACTOR[spelling[0]]


def _amount(groups: dict[str, str | None]) -> Unit:
    """The numerator of a matched unit (everything before an optional ``/ …``)."""
    if groups["bp"]:
        table = BINARY_PREFIX if groups["bi"] else SI_PREFIX
        return Unit("bytes", table[groups["bp"]])
    if groups["byte"]:
        return Unit("bytes", 1.0)
    if groups["flop"]:
        return Unit("FLOP", SI_PREFIX[groups["fp"]] if groups["fp"] else 1.0)
    for kind in ("param", "token", "nat", "element"):
        if groups[kind]:
            return Unit(kind + "s", 1.0)
    if groups["ratio"]:
        return Unit("ratio", RATIO_FACTOR[groups["ratio"]])
    return Unit("s", _time_factor(groups["time"] or "s"))


def _per(spelling: str) -> Unit:
    """The denominator of a rate or density: per token, per byte, or per unit of time."""
    if spelling.lower().startswith("tok"):
        return Unit("token", 1.0)
    if spelling in ("B", "byte", "bytes"):
        return Unit("byte", 1.0)
    return Unit("s", _time_factor(spelling))


def unit_from_match(groups: dict[str, str | None]) -> Unit | None:
    """The unit named by the groups of a :data:`UNIT_PATTERN` match, or None where the pattern matched no unit."""
    if not any(groups.get(name) for name in AMOUNT_GROUPS):
        return None
    amount = _amount(groups)
    if not groups["per"]:
        return amount
    per = _per(groups["per"])
    return Unit(f"{amount.kind}/{per.kind}", amount.factor / per.factor)


def parse_unit(text: str) -> Unit:
    """The unit of a calculator's Result (``"bytes"``, ``"FLOP/token"``, ``"tokens/s"``, ``"fraction"``, …).

    An empty unit is a ratio; a unit this table does not know is its own kind (only bare numbers match it).
    """
    if not text.strip():
        return Unit("ratio", 1.0)
    match = _UNIT_RE.fullmatch(text)
    unit = unit_from_match(match.groupdict()) if match else None
    return unit or Unit(text.strip(), 1.0)
