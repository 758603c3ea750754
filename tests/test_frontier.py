"""The depth/rank frontier (bench.report.frontier): the Pareto front, the headline's "smallest k
within 2 points of centralized" read from seed-level intervals, the figures and tables a report
writes, and a grid of studies whose choices file learns a new study's choices without losing
the old ones."""

import csv
import json
from types import SimpleNamespace

import pytest
import yaml

from bench.config import ExperimentConfig
from bench.protocol import tuning
from bench.protocol.grid import expand, load_grid
from bench.protocol.study import tuned_cells
from bench.report import frontier
from bench.report.tables import main_table
from bench.report.write import write_report


def _row(method, layers="", rank=None, metric=0.7, moved=1e6, lo=-0.01, hi=0.01, pct=10.0):
    seed = {
        "diff": (lo + hi) / 2,
        "lo": lo,
        "hi": hi,
        "seeds": 3,
        "verdict": True,
        "no_verdict": None,
        "contains_zero": lo <= 0 <= hi,
    }
    return {
        "task": "t",
        "partition": "iid",
        "epsilon": None,
        "method": f"{method} {layers}".strip() + (f" r{rank}" if rank else ""),
        "layers": layers,
        "lora_rank": rank,
        "communicates": method != "centralized",
        "metric": metric,
        "metric_ci95": 0.01,
        "bytes_to_best": moved if method != "centralized" else 0.0,
        "bytes_per_round": moved / 10,
        "trainable_pct": pct,
        "seeds": 3,
        "vs_centralized_seed": None if method == "centralized" else seed,
        "vs_fedavg_seed": None,
    }


def _table():
    return [
        _row("centralized", metric=0.75),
        _row("fedavg", metric=0.74, moved=1e9, lo=-0.02, hi=0.0, pct=100),
        # top:2's mean is within 2 points but its interval is not: the rule must read the bound
        _row("layerskip", "top:2", metric=0.735, moved=1e7, lo=-0.05, hi=0.02, pct=15),
        _row("layerskip", "top:3", metric=0.74, moved=2e7, lo=-0.015, hi=0.0, pct=25),
        _row("layerskip", "top:4", metric=0.745, moved=3e7, lo=-0.012, hi=0.0, pct=35),
        _row("layerskip", "bottom:1", metric=0.60, moved=5e6, lo=-0.17, hi=-0.13, pct=8),
        _row("layerskip", "bottom:2", metric=0.70, moved=1e7, lo=-0.06, hi=0.0, pct=15),
        _row("lora", rank=2, metric=0.65, moved=1e5, lo=-0.12, hi=-0.08, pct=0.1),
        _row("lora", rank=8, metric=0.70, moved=4e5, lo=-0.07, hi=-0.03, pct=0.3),
    ]


def test_the_front_holds_exactly_the_non_dominated_configurations():
    (found,) = frontier.frontier_sets(_table())
    front = [r["method"] for r in frontier.pareto(found["configs"])]
    # bottom:1 (5 MB, 0.60) is dominated by lora r8 (0.4 MB, 0.70); bottom:2 by top:2; fedavg by top:4
    assert front == ["lora r2", "lora r8", "layerskip top:2", "layerskip top:3", "layerskip top:4"]
    rows = frontier.table_rows(found)
    assert {r["configuration"]: r["on_front"] for r in rows}["layerskip bottom:2"] is False
    assert [r["bytes_to_best"] for r in rows] == sorted(r["bytes_to_best"] for r in rows)
    twin = dict(_row("layerskip", "top:5", metric=0.74, moved=2e7), method="layerskip top:5")  # ties top:3 exactly
    (found,) = frontier.frontier_sets([*_table(), twin])
    marked = {r["configuration"]: r["on_front"] for r in frontier.table_rows(found)}
    assert marked["layerskip top:3"] and marked["layerskip top:5"]  # one point on the figure, both on the front


def test_the_headline_names_the_smallest_k_whose_whole_interval_is_within_2_points():
    text = " ".join(frontier.headline(_table()))
    assert "top:3 is the smallest top:k within 2 points" in text  # not top:2 (its mean is)
    assert "2% of FedAvg's bytes" in text  # 2e7 of 1e9
    assert "no bottom:k (k = 1, 2) is within 2 points" in text
    assert "bottom:2 only contain -2" in text and "bottom:1 only" not in text  # bottom:1 is wholly below
    assert "from 100.0 kB to 400.0 kB: lora r2 (0.650)" in text and "from 30.0 MB and more: layerskip top:4" in text


def test_a_label_skew_set_reads_the_tasks_centralized_row():
    """Centralized pools the data, so it runs once (iid); the skew set (issue 25's knee under
    Dirichlet) asks its question against that row."""
    skew = [dict(r, partition="dirichlet:0.5") for r in _table() if r["method"] != "centralized"]
    sets = frontier.frontier_sets(_table() + skew)
    assert [s["partition"] for s in sets] == ["dirichlet:0.5", "iid"]
    assert sets[0]["central"] is sets[1]["central"] and sets[0]["central"]["method"] == "centralized"
    assert frontier.frontier_sets(skew) == []  # no centralized anywhere: no question to ask


def test_the_smallest_passing_k_is_the_answer_and_a_larger_k_that_fails_is_named():
    table = _table()
    rows = {r["method"]: r for r in table}
    rows["layerskip top:2"]["vs_centralized_seed"].update(lo=-0.01, hi=0.0)  # passes
    rows["layerskip top:3"]["vs_centralized_seed"].update(lo=-0.03, hi=0.0)  # fails
    text = " ".join(frontier.headline(table))
    assert "top:2 is the smallest top:k within 2 points" in text
    assert "top:3 did not (a larger k is not always within)" in text
    # the largest k failing must not turn passing smaller k into "none is within"
    rows["layerskip top:4"]["vs_centralized_seed"].update(lo=-0.03, hi=0.0)
    text = " ".join(frontier.headline(table))
    assert "top:2 is the smallest top:k within 2 points" in text and "no top:k" not in text
    assert "top:3, top:4 did not" in text
    rows["layerskip top:1"] = _row("layerskip", "top:1", metric=0.5, moved=5e6, pct=8)
    rows["layerskip top:1"]["vs_centralized_seed"].update(verdict=False, no_verdict="2 seeds")
    assert "top:1: 2 seeds; no verdict" in " ".join(frontier.headline(list(rows.values())))
    rows["layerskip top:1"]["vs_centralized_seed"] = None  # one reported seed: no interval at all
    assert "top:1: fewer than 2 seeds paired with centralized's; no verdict" in " ".join(
        frontier.headline(list(rows.values()))
    )


def test_no_verdict_without_three_seeds_and_no_frontier_without_two_sizes():
    table = _table()
    for row in table:
        if row["vs_centralized_seed"]:
            row["vs_centralized_seed"].update(verdict=False, no_verdict="2 seeds")
    assert "no size has a verdict" in " ".join(frontier.headline(table))
    one_size = [r for r in _table() if r["method"] in ("centralized", "fedavg", "layerskip top:2", "lora r8")]
    assert frontier.frontier_sets(one_size) == [] and frontier.headline(one_size) == []


def _stored(runs, run_id, method, seed, metric, layers=None, rank=8, moved=100, trainable=10):
    folder = runs / run_id
    folder.mkdir(parents=True)
    cfg = ExperimentConfig(task="t", method=method, layers=layers, lora_rank=rank, seed=seed, lr=1e-3).to_dict()
    final = {
        "task": "t", "method": method, "status": "ok", "metric_name": "entity_micro_f1", "metric": metric,
        "val_metric": metric, "config": cfg, "bytes_up_total": moved if method != "centralized" else 0,
        "bytes_down_total": 0, "trainable_params": trainable, "total_params": 100, "rounds_run": 2,
        "best_round": 1, "task_kind": "ner", "n_labels": 3,
    }  # fmt: skip
    (folder / "final.json").write_text(json.dumps(final))
    up = moved if method != "centralized" else 0
    (folder / "rounds.jsonl").write_text(
        "".join(json.dumps({"round": r, "val_metric": metric, "bytes_up": up, "bytes_down": 0}) + "\n" for r in (1, 2))
    )


def test_a_report_over_several_depths_and_ranks_draws_and_tabulates_the_frontier(tmp_path):
    runs = tmp_path / "runs"
    configs = [
        ("centralized", None, 8, 0.75, 100),
        ("fedavg", None, 8, 0.74, 100),
        ("layerskip", "top:1", 8, 0.62, 10),
        ("layerskip", "top:3", 8, 0.72, 30),
        ("lora", None, 2, 0.66, 1),
        ("lora", None, 32, 0.70, 5),
    ]
    for i, (method, layers, rank, metric, trainable) in enumerate(configs):
        for seed in (1, 2, 3):
            moved = 0 if method == "centralized" else 1000 * trainable
            _stored(runs, f"r{i}s{seed}", method, seed, metric + 0.01 * seed, layers, rank, moved, trainable)
    out = tmp_path / "out"
    write_report(out, runs_dir=runs)
    for name in ("figures/frontier.png", "figures/frontier.pdf", "figures/gap_vs_trainable.png"):
        assert (out / name).is_file(), name
    with open(out / "tables/frontier.csv") as f:
        rows = {r["configuration"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"fedavg", "layerskip top:1", "layerskip top:3", "lora r2", "lora r32"}
    assert float(rows["lora r2"]["bytes_to_best"]) == 1000  # the best round's bytes, not the whole run's
    table = main_table([{**json.loads((p / "final.json").read_text()), "history": _history(p)} for p in runs.iterdir()])
    assert {t["best_round"] for t in table} == {1.0} and {t["rounds_run"] for t in table} == {2.0}
    assert float(rows["layerskip top:3"]["vs_centralized_diff"]) == pytest.approx(-0.03)
    report = (out / "report.md").read_text()
    assert "Depth/rank frontier" in report and "Cost: " not in report  # cost is the grid runner's note
    with open(out / "summary.csv") as f:
        summary = list(csv.DictReader(f))
    ranks = {(r["method"], r["lora_rank"]) for r in summary}
    assert ("lora", "2") in ranks and ("lora", "32") in ranks and ("fedavg", "") in ranks
    modes = {(r["method"], r["frozen_mode"]) for r in summary}  # a stored config without it: its default
    assert ("layerskip", "train") in modes and ("fedavg", "") in modes
    assert {"lora r2", "lora r32"} <= {t["method"] for t in table}


def _history(folder):
    return [json.loads(line) for line in (folder / "rounds.jsonl").read_text().splitlines()]


def _studies_grid(tmp_path, data_dir):
    path = tmp_path / "g.yaml"
    path.write_text(f"""name: s
defaults: {{model: tiny-bert, clients: 2, rounds: 2, max_length: 48, data_dir: "{data_dir}"}}
tasks: [i2b2-2010]
partitions: [iid]
seeds: [0, 1]
tuned: tuned.yaml
studies:
  main:
    methods: [{{method: fedavg, tune: {{lr: [0.001, 0.01]}}}}]
  frontier:
    methods: [{{method: fedavg, tune: {{lr: [0.001, 0.01]}}}}, {{method: lora, lora_rank: 2, tune: {{lr: [0.001, 0.01]}}}}]
""")
    return path


def test_a_new_study_is_swept_and_merged_into_the_choices_file_keeping_the_old_choices(tiny_corpus, tmp_path):
    path = _studies_grid(tmp_path, tiny_corpus)
    name, grid = load_grid(str(path))
    main_cells = [c for c in expand(grid) if c.config.method == "fedavg"]
    fedavg_group = tuning.group_of(main_cells[0].config, ["lr"])
    tuning.write_choices(
        tmp_path / "tuned.yaml",
        name,
        {"fedavg": {"lr": [0.001, 0.01]}},
        {fedavg_group: {"lr": 0.01}},
        [{"group": fedavg_group, "task": "i2b2-2010", "method": "fedavg", "layers": "", "lora_rank": None,
          "partition": "iid", "epsilon": None, "val_metric": 0.5, "chosen": True, "run_id": "old"}],
    )  # fmt: skip
    cells = expand(grid)
    lora_points = tuning.sweep_points([c for c in cells if c.config.method == "lora"])
    out = tmp_path / "out"
    for point, val in zip(lora_points, (0.3, 0.4)):  # the new study's sweep, as if it had run
        (out / "runs" / point.cell.run_id).mkdir(parents=True)
        (out / "runs" / point.cell.run_id / "final.json").write_text(json.dumps({"val_metric": val}))
    args = SimpleNamespace(tune=False, report_only=True, resume=False, parallel=1, ray_address=None)
    tuned = tuned_cells(name, grid, cells, out, args)
    lrs = {(c.config.method, c.config.seed): c.config.lr for c in tuned}
    assert lrs == {("fedavg", 0): 0.01, ("fedavg", 1): 0.01, ("lora", 0): 0.01, ("lora", 1): 0.01}
    doc = yaml.safe_load((tmp_path / "tuned.yaml").read_text())
    assert {c["method"] for c in doc["choices"]} == {"fedavg", "lora"}  # the old choice kept, the new one added
    assert set(doc["sweep"]["tune"]) == {"fedavg", "lora r2"} and "old" in doc["sweep"]["points"]
    assert next(c for c in doc["choices"] if c["method"] == "lora")["lora_rank"] == 2
    doc["sweep"]["tune"]["lora r2"] = {"lr": [0.1, 1.0]}  # a file swept over other values is still refused
    (tmp_path / "tuned.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(Exception, match="other values than the grid's tune \\(lora r2\\)"):
        tuned_cells(name, grid, cells, out, args)


def test_a_choice_under_a_label_the_file_never_swept_is_not_used(tiny_corpus, tmp_path):
    """A file written before LoRA was labelled by rank names its sweep `lora`: its LoRA choice is
    not vouched for by the grid's `lora r2` and is swept again, not applied silently."""
    path = _studies_grid(tmp_path, tiny_corpus)
    name, grid = load_grid(str(path))
    cells = expand(grid)
    lora_group = tuning.group_of(next(c for c in cells if c.config.method == "lora").config, ["lr"])
    tuning.write_choices(
        tmp_path / "tuned.yaml",
        name,
        {"lora": {"lr": [0.001, 0.01]}},
        {lora_group: {"lr": 0.001}},
        [{"group": lora_group, "task": "i2b2-2010", "method": "lora", "layers": "", "partition": "iid",
          "epsilon": None, "val_metric": 0.5, "chosen": True, "run_id": "old"}],
    )  # fmt: skip
    args = SimpleNamespace(tune=False, report_only=True, resume=False, parallel=1, ray_address=None)
    tuned = tuned_cells(name, grid, [c for c in cells if c.config.method == "lora"], tmp_path / "out", args)
    assert tuned == [None, None]  # left to its own sweep (not run here), never given the old label's 0.001
