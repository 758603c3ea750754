"""`run_all.py --data-dir ROOT`: each task's release in its own folder under ROOT, a missing one
named before anything runs (README, the paper grid on a cluster)."""

from __future__ import annotations

from tests.cli import run_all_main


def test_a_missing_release_folder_is_named_before_any_cell_runs(tmp_path):
    """The grid needs i2b2-2010 and i2b2-2014; ROOT holds only i2b2-2010/: exit 2 with one line
    naming i2b2-2014/, and nothing written under --out (no runs/ folder, no cell started)."""
    root = tmp_path / "releases"
    (root / "i2b2-2010").mkdir(parents=True)
    grid = tmp_path / "g.yaml"
    grid.write_text("""name: t
defaults: {model: tiny-bert, clients: 2, rounds: 1, max_length: 48}
tasks: [i2b2-2010, i2b2-2014]
methods: [{method: fedavg}]
partitions: [iid]
seeds: [0]
""")
    out = tmp_path / "out"
    proc = run_all_main("--grid", grid, "--data-dir", root, "--out", out, check=False)
    assert proc.returncode == 2
    assert "no folder i2b2-2014/ for task i2b2-2014" in proc.stderr
    assert "i2b2-2010/" not in proc.stderr  # the folder that is there is not the one named
    assert not (out / "runs").exists() and not out.exists()
