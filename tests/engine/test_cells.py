"""A grid's cells as Ray tasks: a cell whose process dies is reported and the others finish,
follow-ups jump the queue, a node's GPUs bound the GPU cells at once. (Cells spread over a
two-node cluster: test_running_cluster.py.)"""

from pathlib import Path

import pytest

ray = pytest.importorskip("ray")


def _dies_on_b(cell):
    import os

    if cell.run_id == "b":
        os._exit(1)  # the process running this cell dies, as under the OOM killer
    return "ok"


def test_a_cell_whose_process_dies_is_reported_and_the_others_finish():
    from types import SimpleNamespace

    from bench.config import ExperimentConfig
    from bench.engine.cells import run_cells_parallel

    cfg = ExperimentConfig(task="conll", method="fedavg", cpus_per_worker=1)
    cells = [SimpleNamespace(run_id=name, config=cfg) for name in ("a", "b", "c")]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        seen = []
        statuses = run_cells_parallel(cells, _dies_on_b, 2, None, lambda cell, status: seen.append(cell.run_id))
    finally:
        ray.shutdown()
    assert statuses == {"a": "ok", "b": "crashed", "c": "ok"} and sorted(seen) == ["a", "b", "c"]


def test_follow_up_cells_jump_the_queue(tmp_path, monkeypatch):
    """A tuning group's seeds run as soon as its last sweep point ends, before the next group's
    points; a follow-up that is already stored is skipped (and may release its own)."""
    from types import SimpleNamespace

    from bench.config import ExperimentConfig
    from bench.protocol import runner

    order = []
    monkeypatch.setattr(runner, "run_cell", lambda cell, runs, resume: order.append(cell.run_id) or "ok")
    cfg = ExperimentConfig(task="conll", method="fedavg")  # not an hf: source: nothing to load first
    cell = lambda name: SimpleNamespace(run_id=name, config=cfg)  # noqa: E731
    (tmp_path / "stored").mkdir()
    (tmp_path / "stored" / "final.json").write_text("{}")
    follow = {"a2": ["seed-a", "stored"], "stored": ["after-stored"]}
    runner.run_cells(
        [cell("a1"), cell("a2"), cell("b1")],
        tmp_path,
        False,
        "test",
        then=lambda c, status: [cell(n) for n in follow.get(c.run_id, [])],
    )
    assert order == ["a1", "a2", "seed-a", "after-stored", "b1"]


def test_parallel_cells_run_the_follow_ups_progress_returns():
    from types import SimpleNamespace

    from bench.config import ExperimentConfig
    from bench.engine.cells import run_cells_parallel

    cfg = ExperimentConfig(task="conll", method="fedavg", cpus_per_worker=1)
    cell = lambda name: SimpleNamespace(run_id=name, config=cfg)  # noqa: E731
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        statuses = run_cells_parallel(
            [cell("a"), cell("b")],
            lambda c: "ok",
            2,
            None,
            lambda c, status: [cell("seed-a")] if c.run_id == "a" else [],
        )
    finally:
        ray.shutdown()
    assert statuses == {"a": "ok", "b": "ok", "seed-a": "ok"}


def _holds_for_a_while(log_dir: str, cell) -> str:
    """Write when this cell started and ended (wall clock), holding it 2 s in between."""
    import time

    start = time.time()
    time.sleep(2.0)
    Path(log_dir, cell.run_id).write_text(f"{start} {time.time()}")
    return "ok"


def test_a_nodes_gpus_bound_how_many_gpu_cells_run_at_once(tmp_path):
    """Four one-GPU cells, four slots, a node of two (logical) GPUs and cores to spare: two run at
    a time, so a grid never puts two cells' models on one GPU it did not share out."""
    import functools
    from types import SimpleNamespace

    from bench.config import ExperimentConfig
    from bench.engine.cells import run_cells_parallel

    cfg = ExperimentConfig(task="conll", method="fedavg", workers=1, gpus_per_worker=1.0, cpus_per_worker=1)
    cells = [SimpleNamespace(run_id=f"cell{i}", config=cfg) for i in range(4)]
    ray.init(num_cpus=8, num_gpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_one = functools.partial(_holds_for_a_while, str(tmp_path))
        statuses = run_cells_parallel(cells, run_one, 4, None, lambda cell, status: [])
    finally:
        ray.shutdown()
    assert set(statuses.values()) == {"ok"}
    spans = [tuple(map(float, (tmp_path / c.run_id).read_text().split())) for c in cells]
    at_once = max(sum(s <= t < e for s, e in spans) for t, _ in spans)  # cells running at each start
    assert at_once == 2
