"""`run_all.py --report-only --check`: is a stored report what its stored runs give today?

The report is rebuilt in a temporary copy of its folder (same name, since the title carries it;
checkpoints left behind, the report never reads them), and every file the rebuild wrote is
compared byte for byte with the stored one. The stored folder is never written. A stored file
the runs no longer give fails, and so does one the rebuild writes that the folder lacks (a
report never built, or built before the code wrote that file), except figures' PDFs, which git
does not keep (.gitignore): those are listed only. Stored files the rebuild does not
write (measurements kept beside a report, such as results/quick/rerun_drift.md) are not compared."""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from bench.errors import BenchError

NOT_READ = shutil.ignore_patterns("checkpoint.pt", "*.log")  # the report reads neither
NOT_KEPT = ".pdf"  # written beside each PNG figure, ignored by git: a fresh clone has none


class Rebuilt(NamedTuple):
    same: list[str]  # stored files the rebuild wrote byte for byte
    differ: list[str]  # stored files the rebuild wrote otherwise
    missing: list[str]  # files the rebuild wrote that the folder should hold and does not
    unstored: list[str]  # PDFs the rebuild wrote that the folder does not hold (git keeps none)


def _files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "runs" not in p.relative_to(root).parts
    }


def compare(stored: Path, rebuilt: Path, before: dict[str, int]) -> Rebuilt:
    """`rebuilt`'s files written since `before` (path -> mtime_ns at copy time) against `stored`'s."""
    written = sorted(f for f in _files(rebuilt) if (rebuilt / f).stat().st_mtime_ns != before.get(f))
    held = [f for f in written if (stored / f).is_file()]
    differ = [f for f in held if not filecmp.cmp(stored / f, rebuilt / f, shallow=False)]
    new = [f for f in written if f not in held]
    return Rebuilt(
        [f for f in held if f not in differ],
        differ,
        [f for f in new if not f.endswith(NOT_KEPT)],
        [f for f in new if f.endswith(NOT_KEPT)],
    )


def check(out: Path, rebuild: Callable[[Path], object]) -> Rebuilt:
    """Copy `out`, call `rebuild(copy)` (it writes the report into the copy), compare."""
    if not (out / "runs").is_dir():
        raise BenchError(f"{out}: no runs/ folder, so no stored report to check")
    with tempfile.TemporaryDirectory(prefix="report-check-") as tmp:
        copy = Path(tmp) / out.resolve().name
        shutil.copytree(out, copy, ignore=NOT_READ)
        before = {f: (copy / f).stat().st_mtime_ns for f in _files(copy)}
        rebuild(copy)
        return compare(out, copy, before)


def verdict(out: Path, rebuild: Callable[[Path], object]) -> int:
    """Check `out`, print the summary; the exit code: 1 when a file differs or is missing, else 0."""
    result = check(out, rebuild)
    print(summary(out, result))
    return 1 if result.differ or result.missing else 0


def summary(out: Path, result: Rebuilt) -> str:
    """What to print: the verdict on one line, then the files that differ or are new."""
    wrong = len(result.differ) + len(result.missing)
    lines = [
        f"{out}: {len(result.same)} stored report file(s) are what the stored runs give"
        + (f"; {wrong} are not:" if wrong else " (none differ)")
    ]
    lines += [f"  differs: {f}" for f in result.differ] + [f"  missing: {f}" for f in result.missing]
    if result.unstored:
        lines.append(f"  PDFs written, not stored ({len(result.unstored)}): " + ", ".join(result.unstored))
    return "\n".join(lines)
