"""The home page's trend plot, drawn on the server as inline SVG: accuracy per section per day (no JS, no CDN)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date

from markupsafe import Markup, escape

from tfdojo.practice.counters import is_right
from tfdojo.practice.store import Attempt, utc

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
WIDTH, HEIGHT, PAD = 640, 220, 36


def accuracy_by_section(
    attempts: Iterable[Attempt], section_of: Mapping[str, str]
) -> dict[str, list[tuple[date, float]]]:
    """Per section, the share of right attempts on each (UTC) day that had any, oldest first."""
    tally: dict[str, dict[date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for a in attempts:
        section = section_of.get(a.question_id)
        if section is None:
            continue
        cell = tally[section][utc(a.at).date()]
        cell[0] += is_right(a)
        cell[1] += 1
    return {s: [(d, r / n) for d, (r, n) in sorted(days.items())] for s, days in sorted(tally.items())}


def trend_svg(series: Mapping[str, list[tuple[date, float]]], titles: Mapping[str, str]) -> Markup:
    """An SVG line chart of ``series`` (accuracy 0–1 by day), with a legend; a note when there is no data."""
    days = sorted({d for points in series.values() for d, _ in points})
    if not days:
        return Markup('<p class="muted">No attempts yet: the trend appears after your first answers.</p>')
    first, span = days[0], max((days[-1] - days[0]).days, 1)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def xy(d: date, acc: float) -> tuple[float, float]:
        x = PAD + inner_w * ((d - first).days / span if len(days) > 1 else 0.5)
        return round(x, 1), round(PAD + inner_h * (1 - acc), 1)

    parts = [
        f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT + 20 * ((len(series) + 2) // 3)}" role="img" '
        'aria-label="accuracy per section by day">'
    ]
    for level in (0.0, 0.5, 1.0):
        y = PAD + inner_h * (1 - level)
        parts.append(f'<line x1="{PAD}" y1="{y}" x2="{WIDTH - PAD}" y2="{y}" class="grid"/>')
        parts.append(f'<text x="4" y="{y + 4}" class="axis">{level:.0%}</text>')
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}" class="axis">{first.isoformat()}</text>')
    parts.append(
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" class="axis" text-anchor="end">{days[-1].isoformat()}</text>'
    )
    for i, (section, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        coords = [xy(d, acc) for d, acc in points]
        path = " ".join(f"{x},{y}" for x, y in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>' for x, y in coords]
        lx, ly = PAD + (i % 3) * (inner_w / 3), HEIGHT + 14 + 20 * (i // 3)
        parts.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly}" class="legend">{escape(titles.get(section, section))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
