"""The units a numeric answer may carry: each spelling maps to a kind (what is measured) and a factor to base units.

Kinds are the dimensions the calculators report: bytes, FLOP, params, tokens, s (seconds), nats, elements and
ratio (fractions, percentages, "×"), plus rates and densities written ``a/b`` (tokens/s, bytes/s, FLOP/token, …).
Byte prefixes follow the standards: GB = 10^9 bytes, GiB = 2^30 bytes, in any letter case (``gib``, ``gb``);
bits count as an eighth of a byte (``Gbit``, ``Gbps``). ``Gb`` (capital prefix, small b) is refused as
ambiguous: gigabit or gigabyte. ``FLOPS`` in capitals is a count or a rate: :attr:`Unit.alt_kind` keeps both
readings and the question's dimension picks one. A bare ``B`` after a number is decided by the grader (bytes
when the question asks for bytes, else a billion).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tfdojo.errors import AnswerParseError

SI_PREFIX = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
BINARY_PREFIX = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50, "E": 2**60}
PREFIX_WORDS = {"kilo": 1e3, "mega": 1e6, "giga": 1e9, "tera": 1e12, "peta": 1e15, "exa": 1e18}
PREFIX_WORDS |= {"kibi": 2**10, "mebi": 2**20, "gibi": 2**30, "tebi": 2**40, "pebi": 2**50, "exbi": 2**60}
TIME_FACTOR = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}
TIME_FACTOR["d"] = 86400.0
RATIO_FACTOR = {"%": 0.01, "percent": 0.01, "×": 1.0, "x": 1.0, "fraction": 1.0}

_WORD_PREFIX = "(?i:" + "|".join(PREFIX_WORDS) + ")"
_TIME = r"ns|us|µs|μs|ms|min(?:ute)?s?|s(?:ec(?:ond)?s?)?|h(?:ours?|rs?)?|d(?:ays?)?"
_AMOUNT = (
    r"(?P<ambiguous>[KMGTPE]b)(?![A-Za-z])"  # Gb: gigabit or gigabyte? refused
    r"|(?P<bp>[kKmMgGtTpPeE])(?P<bi>[iI])?[bB](?![A-Za-z])"  # KB, GiB, gib, gb, TB …
    rf"|(?P<bw>{_WORD_PREFIX})?(?P<byte>(?i:bytes?))(?![A-Za-z])"  # bytes, gigabytes, gibibytes
    rf"|(?P<bitp>[kKMGTPE]|{_WORD_PREFIX})?(?P<bit>(?i:bits?|bps))(?![A-Za-z])"  # Gbit, gigabits, Gbps
    rf"|(?P<fp>[kKMGTPE]|{_WORD_PREFIX})?(?P<flop>(?i:flop))(?P<fs>[sS])?(?![A-Za-z])"  # FLOP(s), TFLOPS, teraflops
    r"|(?P<param>(?i:param(?:eter)?s?))(?![A-Za-z])"
    r"|(?P<token>(?i:tok(?:en)?s?))(?![A-Za-z])"
    r"|(?P<nat>nats?)(?![A-Za-z])"
    r"|(?P<element>elements?)(?![A-Za-z])"
    r"|(?P<ratio>%|percent(?![A-Za-z])|fraction(?![A-Za-z])|×|x(?![A-Za-z]))"
    rf"|(?P<time>{_TIME})(?![A-Za-z])"
)
_PER = rf"(?P<per>(?i:tok(?:en)?s?)|(?i:bytes?)|B|{_TIME})"
UNIT_PATTERN = rf"(?:{_AMOUNT})(?:\s*(?:/|\s+per\s+)\s*{_PER}(?![A-Za-z]))?"
AMOUNT_GROUPS = ("ambiguous", "bp", "byte", "bit", "flop", "param", "token", "nat", "element", "ratio", "time")
_UNIT_RE = re.compile(rf"\s*{UNIT_PATTERN}\s*")


@dataclass(frozen=True)
class Unit:
    """A unit as written: the kind of quantity it measures and how many base units one of it is.

    ``alt_kind`` is the other kind an ambiguous spelling may mean ("FLOPS": FLOP or FLOP/s), else None.
    """

    kind: str
    factor: float
    alt_kind: str | None = None


def prefix_factor(prefix: str | None, binary: bool = False) -> float:
    """The factor of a prefix letter (K, M, G, … in any case) or word (giga, gibi, …); 1 for none."""
    if not prefix:
        return 1.0
    if len(prefix) > 1:
        return PREFIX_WORDS[prefix.lower()]
    return (BINARY_PREFIX if binary else SI_PREFIX)[prefix.upper()]


def _time_factor(spelling: str) -> float:
    for short in ("ns", "us", "µs", "μs", "ms", "min"):
        if spelling.startswith(short):
            return TIME_FACTOR[short]
    return TIME_FACTOR[spelling[0]]


def _amount(groups: dict[str, str | None]) -> Unit:
    """The numerator of a matched unit (everything before an optional ``/ …``)."""
    if groups["ambiguous"]:
        raise AnswerParseError(
            f"{groups['ambiguous']!r} could be gigabits or gigabytes; write GB, GiB or bytes (or Gbit for bits)"
        )
    if groups["bp"]:
        return Unit("bytes", prefix_factor(groups["bp"], binary=bool(groups["bi"])))
    if groups["byte"]:
        return Unit("bytes", prefix_factor(groups["bw"]))
    if groups["bit"]:
        per_second = groups["bit"].lower() == "bps"
        return Unit("bytes/s" if per_second else "bytes", prefix_factor(groups["bitp"]) / 8)
    if groups["flop"]:
        capital_s = groups["flop"] == "FLOP" and groups["fs"] == "S"  # FLOPS: a count, or per second?
        return Unit("FLOP", prefix_factor(groups["fp"]), "FLOP/s" if capital_s else None)
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
    if spelling.lower() in ("b", "byte", "bytes"):
        return Unit("byte", 1.0)
    return Unit("s", _time_factor(spelling))


def unit_from_match(groups: dict[str, str | None]) -> Unit | None:
    """The unit named by the groups of a :data:`UNIT_PATTERN` match, or None where the pattern matched no unit.

    Raises AnswerParseError for a spelling that is ambiguous ("Gb").
    """
    if not any(groups.get(name) for name in AMOUNT_GROUPS):
        return None
    amount = _amount(groups)
    if not groups["per"]:
        return amount
    if "/" in amount.kind:
        raise AnswerParseError(f"{groups['per']!r} after a rate makes no sense here; write one unit, e.g. 'GB/s'")
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
