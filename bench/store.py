"""Run folders and caches: atomic writes (temp file + rename), checkpoints, reading stored runs back,
and what a result records."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import torch

from bench.errors import BenchError

PACKAGES = ("torch", "transformers", "peft", "opacus", "ray", "numpy", "seqeval", "scikit-learn")


def cache_root() -> Path:
    """$BENCH_CACHE, else .cache/ in the working directory: the synthetic corpus, tokenizers,
    the prefix cache and pilot timings live there."""
    return Path(os.environ.get("BENCH_CACHE", ".cache"))


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` whole: written beside it, then renamed, so a reader (or a crash) sees the
    old file or the new one, never part of one; a failed write leaves the old file and no stray."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_rounds(path: Path, history: list[dict]) -> None:
    """rounds.jsonl, rewritten whole from the checkpointed history so the two never disagree."""
    atomic_write_text(path, "".join(json.dumps(line, sort_keys=True) + "\n" for line in history))


def save_checkpoint(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt.", dir=path.parent)
    os.close(fd)
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict | None:
    return torch.load(path, weights_only=False) if path.is_file() else None


def versions() -> dict:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["python"] = platform.python_version()
    return found


def git_state(root: Path | None = None) -> dict:
    """The code a run or measurement used: the commit, and the tracked or new files that differ
    from it (results/ left out: a study's own new run folders are not a change of code). `root`:
    the checkout (default: this package's)."""
    root = root or Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":(exclude)results"],
            cwd=root, capture_output=True, text=True, timeout=5,
        ).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    changed = sorted(line[3:] for line in status.splitlines() if line.strip())
    return {"commit": commit or None, "dirty": bool(changed), "changed": changed[:20]}


def to_csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def read_json(path: Path):
    """A stored JSON file; a malformed one (a run killed mid-write by hand, an edit) is one line
    naming the file and line, not a traceback."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BenchError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None


def read_json_lines(path: Path) -> list:
    """A stored JSON-lines file (rounds.jsonl), blank lines skipped; a malformed line is named."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            out.extend([json.loads(line)] if line.strip() else [])
        except json.JSONDecodeError as e:
            raise BenchError(f"{path}:{n}: malformed JSON line ({e.msg})") from None
    return out


def _json(path: Path):
    return read_json(path) if path.is_file() else None


def load_runs(runs_dir: Path, run_ids: list[str] | None = None) -> list[dict]:
    """One record per run folder: its final.json (or failed.json), rounds and test items.
    A requested run with neither is named, so a report never silently drops a cell."""
    runs, missing = [], []
    wanted = run_ids if run_ids is not None else sorted(p.name for p in runs_dir.iterdir())
    for run_id in wanted:
        folder = runs_dir / run_id
        record = _json(folder / "final.json") or _json(folder / "failed.json")
        if record is None:
            missing.append(run_id)
            continue
        rounds = folder / "rounds.jsonl"
        record["history"] = read_json_lines(rounds) if rounds.is_file() else []
        record["partition_description"] = _json(folder / "partition.json")
        record["test_items"] = _json(folder / "test_items.json")
        record["test_groups"] = _json(folder / "test_groups.json")  # absent for runs stored before 2026-12-03
        record["run_id"] = run_id
        runs.append(record)
    if missing:
        print(f"report: {len(missing)} of {len(wanted)} cells have no stored result yet (e.g. {missing[0]})")
    return runs
