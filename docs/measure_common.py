"""What the docs/measure_*.py scripts share: how they name the code, layout and CPU a run used, and how many
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


def side(final: dict) -> str:
    """What made a stored run: its commit, whether the tree was dirty, its execution and CPU."""
    git, host = final.get("git") or {}, final.get("host") or {}
    execution = (final.get("execution") or "execution not recorded").split(" (")[0]
    flags = host.get("cpu_flags_sha", "not recorded")
    return f"{code_label(git)}, {execution}, CPU flags {flags}"


def layout(final: dict) -> str:
    """workers x torch threads, from the execution line ("?" where a run did not record it)."""
    words = (final.get("execution") or "").split()
    if "worker(s)," not in words:
        return "?"
    return f"{words[words.index('worker(s),') - 1]}x{words[words.index('thread(s)') - 2]}"
