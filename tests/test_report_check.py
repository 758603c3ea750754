"""`run_all.py --report-only --check` (bench.report.check): a committed report is what its
committed runs give with today's code. The README says `--report-only` rebuilds a committed
report on a fresh clone; these run that on two of the committed results folders (the NCBI
study's, 3 minutes here, is checked by hand: README, "Results")."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.cli import run_all_main

ROOT = Path(__file__).resolve().parents[1]
LORA_REGEN = ROOT / "results" / "ncbi-lora-regen"


def test_the_committed_quick_report_is_what_its_committed_runs_give():
    proc = run_all_main("--grid", "quick", "--out", ROOT / "results" / "quick", "--check")
    assert "(none differ)" in proc.stdout, proc.stdout


def test_the_committed_lora_regen_report_is_what_its_committed_runs_give():
    """Three seeds a row, so a change that shows only across seeds (a mean become a median) fails
    here, where the quick grid's one seed cannot show it, and the edited copy below hides it."""
    proc = run_all_main("--grid", LORA_REGEN / "grid.yaml", "--out", LORA_REGEN, "--check")
    assert "(none differ)" in proc.stdout, proc.stdout


def test_a_stored_table_the_runs_do_not_give_or_a_missing_one_fails_the_check_and_is_named(tmp_path):
    copy = tmp_path / LORA_REGEN.name  # the report's title is its folder's name
    shutil.copytree(LORA_REGEN, copy, ignore=shutil.ignore_patterns("checkpoint.pt"))
    table = copy / "tables" / "main.csv"
    edited = table.read_text().replace("0.6429846619443467", "0.6529846619443467", 1)
    assert edited != table.read_text()
    table.write_text(edited)
    (copy / "tables" / "main.tex").unlink()
    record = copy / "tuning.csv"  # the sweep's record, which the report's checks read: made stale
    record.write_text(record.read_text().replace(",convergence,", ",").replace(",converged,", ","))
    # and the grid's choices file gone: the rebuild makes the choices again from the stored sweep,
    # as --report-only would, but writes no choices file (nothing outside its temporary copy)
    (copy / "tuned.yaml").unlink()

    proc = run_all_main("--grid", copy / "grid.yaml", "--out", copy, "--check", check=False)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    named = [line.strip() for line in proc.stdout.splitlines() if line.startswith("  ") and "PDFs" not in line]
    assert named == ["differs: tables/main.csv", "differs: tuning.csv", "missing: tables/main.tex"]
    matched = int(
        re.search(r": (\d+) stored report file\(s\) are what the stored runs give; 3 are not", proc.stdout)[1]
    )
    assert matched >= 9  # every other file: 5 figures, report.md, summary.csv, 2 tables (PDFs where stored)
    assert table.read_text() == edited and not (copy / "tables" / "main.tex").exists()  # the folder is not written
    assert not (copy / "tuned.yaml").exists()


def test_check_trains_nothing_and_needs_stored_runs(tmp_path):
    proc = run_all_main("--grid", "quick", "--check", "--tune", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--check" in proc.stderr
    proc = run_all_main("--grid", "quick", "--out", tmp_path / "empty", "--check", check=False)
    assert proc.returncode == 2 and "no runs/ folder" in proc.stderr
