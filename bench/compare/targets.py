"""Issue 26's targets, read off a comparison's results: each one's measured figure and whether it
holds, so `python -m bench.compare` prints the verdict it measured rather than a reader working
it out (and docs/PERFORMANCE.md quotes this table, not a hand-computed one).

A target is checked only where its sides ran; a missing side leaves the row out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    what: str  # the target in words
    workloads: tuple[str, ...]
    sides: tuple[str, ...]  # the sides its figure needs
    figure: Callable[[dict], float]  # from one workload's results
    holds: Callable[[float], bool]
    shown: str = "{:.2f}"


def _ratio(numerator: str, denominator: str, key: str) -> Callable[[dict], float]:
    return lambda r: r[numerator][key] / r[denominator][key]


TARGETS = (
    Target(
        "suite wall time / floor's <= 1.10",
        ("A", "B"),
        ("suite", "floor"),
        _ratio("suite", "floor", "wall_s"),
        lambda x: x <= 1.10,
    ),
    Target(
        "Flower (num_cpus 1) wall time / suite's >= 1.0",
        ("A", "B"),
        ("flower_equal", "suite"),
        _ratio("flower_equal", "suite", "wall_s"),
        lambda x: x >= 1.0,
    ),
    Target(
        "Flower (num_cpus 1) wall time / suite's >= 1.3 (the frozen-prefix cache)",
        ("C",),
        ("flower_equal", "suite"),
        _ratio("flower_equal", "suite", "wall_s"),
        lambda x: x >= 1.3,
    ),
    Target(
        "suite peak PSS / Flower's (num_cpus 1) <= 0.5",
        ("A", "B"),
        ("suite", "flower_equal"),
        _ratio("suite", "flower_equal", "peak_pss_mb"),
        lambda x: x <= 0.5,
    ),
    Target(
        "suite peak PSS <= 2000 MB",
        ("C",),
        ("suite",),
        lambda r: r["suite"]["peak_pss_mb"],
        lambda x: x <= 2000,
        "{:.0f}",
    ),
    Target(
        "test F1, suite - Flower (num_cpus 1), within 1 point",
        ("A", "B", "C"),
        ("suite", "flower_equal"),
        lambda r: r["suite"]["metric"] - r["flower_equal"]["metric"],
        lambda x: abs(x) <= 0.01,
        "{:+.4f}",
    ),
    Target(
        "test F1 above 0.3 on both sides (B learns)",
        ("B",),
        ("suite", "flower_equal"),
        lambda r: min(r["suite"]["metric"], r["flower_equal"]["metric"]),
        lambda x: x > 0.3,
        "{:.3f}",
    ),
)


def verdicts(results: dict) -> list[tuple[str, str, str, bool]]:
    """(target, workload, figure as shown, holds) for every target whose sides ran."""
    found = []
    for target in TARGETS:
        for name in target.workloads:
            r = results.get(name, {})
            if all(r.get(side) for side in target.sides):
                x = target.figure(r)
                found.append((target.what, name, target.shown.format(x), target.holds(x)))
    return found


def targets_table(results: dict) -> str:
    lines = ["| target | workload | measured | holds |", "|---|---|---|---|"]
    lines += [f"| {what} | {name} | {x} | {'yes' if ok else 'no'} |" for what, name, x, ok in verdicts(results)]
    return "\n".join(lines)
