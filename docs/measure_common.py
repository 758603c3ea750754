"""What the docs/measure_*.py scripts share: how they name the code a run used, and how many
significant digits two numbers share."""

from __future__ import annotations

import math

from bench.store import git_state

EQUAL = 17  # shared_digits of two equal floats: more than a double holds


def code_label(git: dict | None) -> str:
    """A stored `git` record (final.json's, perf files') as a short commit, marked when dirty."""
    git = git or {}
    return f"{(git.get('commit') or '?')[:7]}{' (dirty)' if git.get('dirty') else ''}"


def this_code() -> str:
    """The code this script runs: the checkout's commit, marked when code differs from it."""
    return code_label(git_state())


def shared_digits(a: float, b: float) -> int:
    """Significant digits two numbers share (7 for 0.73440053 and 0.73440048); EQUAL if equal."""
    return EQUAL if a == b else max(0, int(-math.log10(abs(a - b) / max(abs(a), abs(b)))))
