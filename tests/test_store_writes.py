"""README: the store's files are "replaced whole (written beside, then renamed)": a write that
fails part-way leaves the old file as it was and nothing beside it (bench.store.atomic_write_text)."""

from __future__ import annotations

import os

import pytest

from bench.store import atomic_write_json, atomic_write_text


def test_a_write_that_fails_part_way_leaves_the_old_file_whole_and_no_stray(tmp_path, monkeypatch):
    target = tmp_path / "run" / "final.json"
    atomic_write_json(target, {"metric": 0.5})
    before = target.read_text()

    def fail(fd):  # the new text is written but not yet renamed into place
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, '{"metric": 0.9, "half": ')
    assert target.read_text() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["final.json"]
    monkeypatch.undo()
    atomic_write_json(target, {"metric": 0.9})
    assert '"metric": 0.9' in target.read_text() and len(list(target.parent.iterdir())) == 1
