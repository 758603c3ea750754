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
from bench.protocol.study import run_grid, tuned_cells
from bench.report import frontier, frontier_headline
from bench.report.tables import main_table
from bench.report.write import write_report


def _row(method, layers="", rank=None, metric=0.7, moved=1e6, lo=-0.01, hi=0.01, pct=10.0, per_round=None):
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
        "bytes_per_round": moved / 10 if per_round is None else per_round,
        "best_round": moved / (moved / 10 if per_round is None else per_round),
        "trainable_pct": pct,
        "seeds": 3,
        "vs_centralized_seed": None if method == "centralized" else seed,
        "vs_fedavg_seed": None,
    }


def _table():
    return [
        _row("centralized", metric=0.75),
        # per-round bytes rank apart from bytes to the reported state where runs stop at other rounds:
        # the front and the shares must read the latter (FedAvg stops at round 20, bottom:1 at 1000)
        _row("fedavg", metric=0.74, moved=1e9, lo=-0.02, hi=0.0, pct=100, per_round=5e7),
        # top:2's mean is within 2 points but its interval is not: the rule must read the bound
        _row("layerskip", "top:2", metric=0.735, moved=1e7, lo=-0.05, hi=0.02, pct=15),
        _row("layerskip", "top:3", metric=0.74, moved=2e7, lo=-0.015, hi=0.0, pct=25),
        _row("layerskip", "top:4", metric=0.745, moved=3e7, lo=-0.012, hi=0.0, pct=35),
        _row("layerskip", "bottom:1", metric=0.60, moved=5e6, lo=-0.17, hi=-0.13, pct=8, per_round=5e3),
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
    text = " ".join(frontier_headline.headline(_table()))
    assert "top:3 is the smallest top:k (k run: 2, 3, 4) within 2 points" in text  # not top:2 (its mean is)
    assert "2% of FedAvg's bytes to its reported state (4% per round)" in text  # 2e7 of 1e9; 2e6 of 5e7
    assert "no bottom:k (k = 1, 2) is within 2 points" in text
    assert "bottom:2 only contains -2 in its interval" in text and "bottom:1 only" not in text  # bottom:1: wholly below
    assert "from 100.0 kB to 400.0 kB: lora r2 (0.650)" in text and "from 30.0 MB and more: layerskip top:4" in text
    assert "By family: lora from 100.0 kB, layerskip top from 10.0 MB." in text


def test_a_front_point_cheaper_only_by_its_earlier_best_rounds_is_said_to_be():
    """NCBI's top:6 moved fewer bytes to its reported state than top:5 though 20% more a round:
    its seeds peaked earlier. The front ranks by bytes to the reported state; the headline says why."""
    table = _table()
    table.append(_row("layerskip", "top:5", metric=0.747, moved=8e7, per_round=4e6, lo=-0.01, hi=0.02))
    table.append(_row("layerskip", "top:6", metric=0.746, moved=7e7, per_round=4.8e6, lo=-0.01, hi=0.02))
    text = " ".join(frontier_headline.headline(table))
    assert "layerskip top:6 is below layerskip top:5 only by its earlier best rounds (14.6 against 20.0" in text
    assert "it moves 20% more a round" in text
    assert "only by its earlier" not in " ".join(frontier_headline.headline(_table()))  # per round in order: no note


def test_a_label_skew_set_reads_the_tasks_centralized_row():
    """Centralized pools the data, so it runs once (iid); the skew set (issue 25's knee under
    Dirichlet) asks its question against that row."""
    skew = [dict(r, partition="dirichlet:0.5") for r in _table() if r["method"] != "centralized"]
    sets = frontier.frontier_sets(_table() + skew)
    assert [s["partition"] for s in sets] == ["iid", "dirichlet:0.5"]  # the question's partition first
    assert sets[0]["central"] is sets[1]["central"] and sets[0]["central"]["method"] == "centralized"
    assert frontier.frontier_sets(skew) == []  # no centralized anywhere: no question to ask


def test_the_smallest_passing_k_is_the_answer_and_a_larger_k_that_fails_is_named():
    table = _table()
    rows = {r["method"]: r for r in table}
    rows["layerskip top:2"]["vs_centralized_seed"].update(lo=-0.01, hi=0.0)  # passes
    rows["layerskip top:3"]["vs_centralized_seed"].update(lo=-0.03, hi=0.0)  # fails
    text = " ".join(frontier_headline.headline(table))
    assert "top:2 is the smallest top:k (k run: 2, 3, 4) within 2 points" in text
    assert "top:3 did not (a larger k is not always within)" in text
    # the largest k failing must not turn passing smaller k into "none is within"
    rows["layerskip top:4"]["vs_centralized_seed"].update(lo=-0.03, hi=0.0)
    text = " ".join(frontier_headline.headline(table))
    assert "top:2 is the smallest top:k (k run: 2, 3, 4) within 2 points" in text and "no top:k" not in text
    assert "top:3, top:4 did not" in text
    rows["layerskip top:1"] = _row("layerskip", "top:1", metric=0.5, moved=5e6, pct=8)
    rows["layerskip top:1"]["vs_centralized_seed"].update(verdict=False, no_verdict="2 seeds")
    assert "top:1: 2 seeds; no verdict" in " ".join(frontier_headline.headline(list(rows.values())))
    rows["layerskip top:1"]["vs_centralized_seed"] = None  # one reported seed: no interval at all
    assert "top:1: fewer than 2 seeds paired with centralized's; no verdict" in " ".join(
        frontier_headline.headline(list(rows.values()))
    )


def test_no_verdict_without_three_seeds_and_no_frontier_without_two_sizes():
    table = _table()
    for row in table:
        if row["vs_centralized_seed"]:
            row["vs_centralized_seed"].update(verdict=False, no_verdict="2 seeds")
    assert "no size has a verdict" in " ".join(frontier_headline.headline(table))
    one_size = [r for r in _table() if r["method"] in ("centralized", "fedavg", "layerskip top:2", "lora r8")]
    assert frontier.frontier_sets(one_size) == [] and frontier_headline.headline(one_size) == []


def _stored(runs, run_id, method, seed, metric, layers=None, rank=8, moved=100, trainable=10):
    folder = runs / run_id
    folder.mkdir(parents=True)
    cfg = ExperimentConfig(task="t", method=method, layers=layers, lora_rank=rank, seed=seed, lr=1e-3).to_dict()
    final = {
        "task": "t", "method": method, "status": "ok", "metric_name": "entity_micro_f1", "metric": metric,
        "val_metric": metric, "config": cfg, "bytes_up_total": 3 * moved, "bytes_down_total": 3 * moved // 2,
        "trainable_params": trainable, "total_params": 100, "rounds_run": 3, "best_round": seed,
        "task_kind": "ner", "n_labels": 3,
    }  # fmt: skip
    (folder / "final.json").write_text(json.dumps(final))
    (folder / "rounds.jsonl").write_text(  # each round moves `moved` up and half of it down
        "".join(
            json.dumps({"round": r, "val_metric": metric, "bytes_up": moved, "bytes_down": moved // 2}) + "\n"
            for r in (1, 2, 3)
        )
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
    # up and down to each seed's best round (seeds 1-3 stop at rounds 1-3), mean over seeds: not the whole run's
    assert float(rows["lora r2"]["bytes_to_best"]) == pytest.approx(1500 * (1 + 2 + 3) / 3)
    assert (float(rows["lora r2"]["bytes_to_best_min"]), float(rows["lora r2"]["bytes_to_best_max"])) == (1500, 4500)
    table = main_table([{**json.loads((p / "final.json").read_text()), "history": _history(p)} for p in runs.iterdir()])
    assert {t["best_round"] for t in table} == {2.0} and {t["rounds_run"] for t in table} == {3.0}
    assert float(rows["layerskip top:3"]["vs_centralized_diff"]) == pytest.approx(-0.03)
    with open(out / "tables/main.csv") as f:  # each row's seeds, parseable back at full precision
        per_seed = {r["method"]: dict(p.split(":") for p in r["seed_metrics"].split()) for r in csv.DictReader(f)}
    stored = {str(s): 0.66 + 0.01 * s for s in (1, 2, 3)}  # as _stored wrote them, to the last bit
    assert {s: float(m) for s, m in per_seed["lora r2"].items()} == stored
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


def test_a_value_the_grid_fixes_is_not_replaced_by_the_choices_file(tiny_corpus, tmp_path):
    """A study without a sweep whose method entry fixes `lr` (the NCBI `mu` study: FedAvg at
    FedProx's lr) keeps it; the choices file fills only what the grid leaves open. The file once
    replaced the fixed value with the main study's choice, and the study re-reported old runs."""
    path = tmp_path / "g.yaml"
    path.write_text(f"""name: s
defaults: {{model: tiny-bert, clients: 2, rounds: 2, max_length: 48, data_dir: "{tiny_corpus / "i2b2-2010"}"}}
tasks: [i2b2-2010]
partitions: [iid]
seeds: [0]
tuned: tuned.yaml
methods: [{{method: fedavg, lr: 0.5}}, {{method: lora}}]
""")
    name, grid = load_grid(str(path))
    cells = expand(grid)
    groups = {c.config.method: tuning.group_of(c.config, ["lr"]) for c in cells}
    rows = [
        {"group": groups[m], "task": "i2b2-2010", "method": m, "layers": "", "lora_rank": None, "partition": "iid",
         "epsilon": None, "val_metric": 0.5, "chosen": True, "run_id": m}
        for m in ("fedavg", "lora")
    ]  # fmt: skip
    choices = {groups["fedavg"]: {"lr": 0.01}, groups["lora"]: {"lr": 0.001}}
    tuning.write_choices(
        tmp_path / "tuned.yaml", name, {"fedavg": {"lr": [0.01]}, "lora": {"lr": [0.001]}}, choices, rows
    )
    args = SimpleNamespace(tune=False, report_only=True, resume=False, parallel=1, ray_address=None)
    tuned = tuned_cells(name, grid, cells, tmp_path / "out", args)
    assert {c.config.method: c.config.lr for c in tuned} == {"fedavg": 0.5, "lora": 0.001}


def test_a_grid_whose_studies_sweep_beside_a_study_that_fixes_its_lr_reports_as_one(tiny_corpus, tmp_path):
    """The whole-grid report reads every study at once: the swept cells take the choices file's
    values, the fixed ones keep the grid's, and a fixed cell that is a swept cell's chosen run is
    one cell (its seeds counted once). The mix once failed ("'tune' must map settings to lists of
    values") and, past that, counted the shared cells twice (FedProx showed 3 of 6 seeds)."""
    path = tmp_path / "g.yaml"
    path.write_text(f"""name: s
defaults: {{model: tiny-bert, clients: 2, rounds: 2, max_length: 48, data_dir: "{tiny_corpus / "i2b2-2010"}"}}
tasks: [i2b2-2010]
partitions: [iid]
seeds: [0, 1]
tuned: tuned.yaml
studies:
  mu:
    methods: [{{method: fedavg, lr: 0.01}}, {{method: lora, lr: 0.5}}]
  main:
    methods: [{{method: lora, tune: {{lr: [0.001, 0.01]}}}}, {{method: fedavg, tune: {{lr: [0.001, 0.01]}}}}]
""")
    name, grid = load_grid(str(path))
    planned = list({c.run_id: c for c in expand(grid)}.values())
    assert [bool(c.tune) for c in planned] == [False] * 4 + [True] * 4  # fixed first: an order mix-up shows
    (tmp_path / "out" / "runs").mkdir(parents=True)
    args = SimpleNamespace(tune=False, report_only=True, resume=False, parallel=1, ray_address=None, probe_edges=False)
    cells, final_of = run_grid(name, grid, planned, tmp_path / "out", args)  # no choices file yet
    assert sorted((c.config.method, c.config.lr) for c in cells) == [("fedavg", 0.01)] * 2 + [("lora", 0.5)] * 2
    groups = {m: tuning.group_of(next(c for c in planned if c.tune and c.config.method == m).config, ["lr"]) for m in ("fedavg", "lora")}  # fmt: skip
    rows = [{"group": groups[m], "task": "i2b2-2010", "method": m, "layers": "", "lora_rank": None, "partition": "iid",
             "epsilon": None, "val_metric": 0.5, "chosen": True, "run_id": "old"} for m in groups]  # fmt: skip
    tuning.write_choices(
        tmp_path / "tuned.yaml", name, {"fedavg": {"lr": [0.001, 0.01]}, "lora r8": {"lr": [0.001, 0.01]}},
        {groups["fedavg"]: {"lr": 0.01}, groups["lora"]: {"lr": 0.001}}, rows,
    )  # fmt: skip
    cells, final_of = run_grid(name, grid, planned, tmp_path / "out", args)
    assert sorted((c.config.method, c.config.seed, c.config.lr) for c in cells) == [
        ("fedavg", 0, 0.01), ("fedavg", 1, 0.01), ("lora", 0, 0.001), ("lora", 0, 0.5), ("lora", 1, 0.001), ("lora", 1, 0.5)
    ]  # fmt: skip
    assert len(final_of) == len(planned) == 8  # both studies' FedAvg cells map to the one run
    for p in planned:  # each planned cell maps to a run of its own method and seed
        ran = final_of[p.run_id].config
        assert (ran.method, ran.seed) == (p.config.method, p.config.seed)
        assert not p.tune or ran.lr == {"fedavg": 0.01, "lora": 0.001}[p.config.method]


def test_a_fedavg_row_at_a_side_setting_is_neither_the_reference_nor_a_configuration():
    """A grid-wide table holds the mu study's FedAvg at FedProx's lr beside the tuned one: the set
    compares with the tuned row and does not draw the other as a second 'fedavg' marker."""
    side = dict(_row("fedavg", metric=0.80, moved=1e6, pct=100), is_reference=False)
    table = [dict(r, is_reference=True) if r["method"] in ("fedavg", "centralized") else r for r in _table()]
    (found,) = frontier.frontier_sets([side, *table])
    assert found["fedavg"]["metric"] == 0.74 and side not in found["configs"]
    assert [r["method"] for r in found["configs"]].count("fedavg") == 1


def test_another_algorithm_is_not_a_configuration_of_the_trade_off_nor_the_knee():
    """FedProx (main's) beside the frontier's rows in a grid-wide table: cheaper than FedAvg to
    its reported state and within 2 points, it would top the front and be the knee by its lr alone."""
    fedprox = _row("fedprox", metric=0.76, moved=5e6, lo=-0.01, hi=0.03, pct=100)
    (found,) = frontier.frontier_sets([*_table(), fedprox])
    assert "fedprox" not in {r["method"] for r in found["configs"]}
    text = " ".join(frontier_headline.headline([*_table(), fedprox]))
    assert "**Knee, t**: layerskip top:3" in text and "fedprox" not in text


def test_each_model_of_a_grid_has_its_own_frontier_against_its_own_centralized(monkeypatch, tmp_path):
    """A grid that runs two models: their configurations are two trade-offs, never one front."""
    from bench.report import frontier_plot

    minilm = [dict(r, model="minilm") for r in _table()]
    other = [dict(r, model="smollm2", metric=r["metric"] - 0.3) for r in _table()]
    sets = frontier.frontier_sets([*other, *minilm])
    assert [(s["model"], s["central"]["model"]) for s in sets] == [("minilm", "minilm"), ("smollm2", "smollm2")]
    assert all({r["model"] for r in s["configs"]} == {s["model"]} for s in sets)
    text = " ".join(frontier_headline.headline([*other, *minilm]))
    assert "**Knee, t, minilm**: layerskip top:3" in text and "**Knee, t, smollm2**" in text
    assert "frontier, t, smollm2 (iid)" in text
    assert {r["model"] for r in frontier.all_rows([*other, *minilm])} == {"minilm", "smollm2"}
    assert "| t (smollm2) | iid | lora r2 |" in frontier.markdown(frontier.all_rows([*other, *minilm]))
    drawn = {}
    monkeypatch.setattr(frontier_plot, "save", lambda fig, folder, name: drawn.setdefault(name, fig))
    frontier_plot.frontier(None, tmp_path, [*other, *minilm])
    frontier_plot.gap_vs_trainable(None, tmp_path, [*other, *minilm])
    for fig in drawn.values():
        assert [ax.get_title().split(" (")[0] for ax in fig.axes] == ["t, minilm", "t, smollm2"]


def test_pooled_compressed_or_budgeted_variants_are_not_configurations_of_the_frontier():
    """The control's one-client top:2 moves bytes too, but it is not a point of the trade-off."""
    pooled = dict(_row("layerskip", "top:2", metric=0.76, moved=1e3), method="layerskip top:2 pooled", variant="pooled")
    (found,) = frontier.frontier_sets([*_table(), pooled])
    assert "layerskip top:2 pooled" not in {r["method"] for r in found["configs"]}
    assert "k run: 2, 3, 4)" in " ".join(frontier_headline.headline([*_table(), pooled]))


def test_configurations_without_three_reported_seeds_or_bytes_are_tabulated_but_not_ranked():
    table = _table()
    rows = {r["method"]: r for r in table}
    rows["layerskip top:4"]["seeds"] = 2  # a study still running: would top the front by its mean
    rows["lora r2"]["seed_role"] = "tuning only"
    rows["lora r8"]["bytes_to_best"] = None
    rows["layerskip bottom:2"].update(complete=False, seeds_planned=4)  # 3 of 4 planned seeds: still running
    (found,) = frontier.frontier_sets(table)
    ranked = ["layerskip bottom:1", "layerskip top:2", "layerskip top:3"]  # bottom:1 undominated once LoRA is out
    assert [r["method"] for r in frontier.pareto(found["configs"])] == ranked
    marked = {r["configuration"]: r for r in frontier.table_rows(found)}
    assert not marked["layerskip top:4"]["on_front"] and marked["layerskip top:4"]["unranked"] == "2 reported seed(s)"
    assert list(marked)[-1] == "lora r8"  # no bytes: tabulated last, not dropped
    table_md = frontier.markdown(frontier.table_rows(found))
    assert "not ranked: the tuning seed only" in table_md and "not ranked: no per-round bytes" in table_md
    assert "not ranked: incomplete (3/4 seeds)" in table_md
    text = " ".join(frontier_headline.headline(table))
    assert "Not ranked: layerskip top:4 (2 reported seed(s))" in text and "lora r8 (no per-round bytes)" in text
    rows["layerskip top:3"]["vs_centralized_seed"].update(verdict=False, no_verdict="2 seeds")
    assert "(2 seeds: no verdict)" in frontier.markdown(frontier.table_rows(frontier.frontier_sets(table)[0]))


def test_the_headline_says_when_a_smaller_k_is_unjudged_or_fedavg_is_missing():
    table = [r for r in _table() if r["method"] != "fedavg"]
    rows = {r["method"]: r for r in table}
    rows["layerskip top:2"]["vs_centralized_seed"].update(verdict=False, no_verdict="2 seeds")
    text = " ".join(frontier_headline.headline(table))
    assert "top:3 is the smallest judged top:k (k run: 2, 3, 4)" in text
    assert "no FedAvg row with bytes to compare its bytes with" in text


def test_the_knee_is_the_cheapest_front_configuration_within_and_is_read_under_label_skew():
    table = _table()
    skew = [dict(r, partition="dirichlet:0.5") for r in table if r["method"] in ("layerskip top:2", "layerskip top:3")]
    skew[1] = dict(skew[1], vs_centralized_seed=dict(skew[1]["vs_centralized_seed"], diff=-0.04, lo=-0.06, hi=-0.02))
    # cheaper than top:3 and within, but dominated by top:2 (fewer bytes, higher mean): not the knee
    dominated = _row("layerskip", "bottom:3", metric=0.73, moved=1.5e7, lo=-0.018, hi=0.0)
    text = " ".join(frontier_headline.headline([*table, *skew, dominated]))
    # lora r2, r8 and top:2 are on the front before top:3 but none has its interval above -2
    assert "**Knee, t**: layerskip top:3 (the cheapest front configuration within 2 points)" in text
    assert "Δ vs centralized: iid -0.8 [-1.5, +0.0] n.s.; dirichlet:0.5 -4.0 [-6.0, -2.0]." in text
    assert "Half the blocks" not in text  # the knee is top:3 itself
    assert "frontier, t (dirichlet:0.5)" not in text  # under skew only the knee is asked
    for row in table:  # nothing within: the issue's fallback, half the blocks
        if row["vs_centralized_seed"]:
            row["vs_centralized_seed"].update(lo=-0.05, hi=-0.03)
    assert "layerskip top:3 (no front configuration is within 2 points: layerskip top:3" in " ".join(
        frontier_headline.headline(table)
    )
    no_top3 = [r for r in table if r["method"] != "layerskip top:3"]
    assert "**Knee, t**: none (no front configuration is within 2 points: layerskip top:3, half the blocks, which" in (
        " ".join(frontier_headline.headline(no_top3))
    )
    running = [dict(r, complete=False, seeds_planned=5) if r["method"] == "layerskip top:3" else r for r in table]
    assert "**Knee, t**: none (" in " ".join(frontier_headline.headline(running))  # a running top:3 is no fallback


def test_a_knee_other_than_top3_is_read_beside_top3_in_every_partition_by_family():
    """The knee and half the blocks under label skew, looked up by family and size (auto:k's label
    names the blocks each partition's probe chose), even where skew holds no frontier of its own."""
    table = [r for r in _table() if r["method"] != "layerskip top:4"]
    auto = _row("layerskip", "auto:1", metric=0.70, moved=2e5, lo=-0.018, hi=0.0)
    auto.update(method="layerskip auto:1 [5]", layers="auto:1")
    auto_skew = dict(auto, partition="dirichlet:0.5", method="layerskip auto:1 [4]")
    auto_skew["vs_centralized_seed"] = dict(auto["vs_centralized_seed"], diff=-0.05, lo=-0.07, hi=-0.03)
    top3_skew = dict(next(r for r in table if r["method"] == "layerskip top:3"), partition="dirichlet:0.5")
    rows = [
        *table,
        dict(auto, method="layerskip auto:2 [4 5]", layers="auto:2", metric=0.1),
        auto,
        auto_skew,
        top3_skew,
    ]
    assert [s["partition"] for s in frontier.frontier_sets(rows)] == ["iid"]  # skew: two families, one size each
    text = " ".join(frontier_headline.headline(rows))
    assert "**Knee, t**: layerskip auto:1 [5] (the cheapest front configuration within 2 points)." in text
    assert "Δ vs centralized: iid -0.9 [-1.8, +0.0] n.s.; dirichlet:0.5 -5.0 [-7.0, -3.0]." in text
    assert "Half the blocks (layerskip top:3): iid -0.8 [-1.5, +0.0] n.s.; dirichlet:0.5 -0.8 [-1.5, +0.0] n.s." in text
    assert "n.s.." not in text
    # a partition's running twin beside its finished row: the finished one is read, and a running one says so
    running = dict(
        top3_skew, complete=False, seeds_planned=5, vs_centralized_seed=dict(auto_skew["vs_centralized_seed"])
    )
    text = " ".join(frontier_headline.headline([*rows, running]))
    assert "dirichlet:0.5 -0.8 [-1.5, +0.0] n.s." in text.split("Half the blocks")[1]
    text = " ".join(frontier_headline.headline([r for r in rows if r is not top3_skew] + [running]))
    assert "dirichlet:0.5 -5.0 [-7.0, -3.0] (incomplete (3/5 seeds))." in text.split("Half the blocks")[1]


def test_the_smallest_k_waits_for_a_size_still_running_as_the_front_does():
    table = _table()
    rows = {r["method"]: r for r in table}
    rows["layerskip top:2"]["vs_centralized_seed"].update(lo=-0.01, hi=0.0)  # within, but 3 of 5 planned seeds
    rows["layerskip top:2"].update(complete=False, seeds_planned=5)
    text = " ".join(frontier_headline.headline(table))
    assert "top:3 is the smallest judged top:k" in text and "top:2: incomplete (3/5 seeds)" in text
    rows["layerskip top:3"]["vs_centralized_seed"].update(lo=-0.02)  # exactly on the line: not wholly above
    assert "top:4 is the smallest judged top:k" in " ".join(frontier_headline.headline(table))
    rows["layerskip top:3"]["vs_centralized_seed"].update(lo=-0.015)
    rows["layerskip top:3"]["bytes_to_best"] = None  # no bytes: off the front, but its quality is judged
    text = " ".join(frontier_headline.headline(table))
    assert "top:3 is the smallest judged top:k" in text and "Not ranked: layerskip top:2 (incomplete" in text
    # top:2, within and still running, could be the knee: the knee line says it is provisional
    assert "Provisional: layerskip top:2 (incomplete (3/5 seeds)) is not a result yet." in text
    # configurations the grid plans with no run yet (their tuning unfinished) could be the knee too
    planned = [
        {"task": "t", "method": "layerskip", "layers": "bottom:3", "partition": "iid"},
        {"task": "t", "method": "lora", "lora_rank": 32, "partition": "iid"},
        {"task": "t", "method": "lora", "lora_rank": 32, "partition": "iid", "seed": 3},  # one label per config
        {"task": "t", "method": "lora", "lora_rank": 16, "partition": "dirichlet:0.5"},  # another set
        {"task": "t", "method": "layerskip", "layers": "top:2", "partition": "iid"},  # has rows already
        {"task": "t", "method": "layerskip", "layers": "top:2", "partition": "iid", "clients": 1},  # pooled variant
        {"task": "other", "method": "lora", "lora_rank": 4, "partition": "iid"},
    ]
    text = " ".join(frontier_headline.headline(table, planned))
    assert "is not a result yet. Not run yet: layerskip bottom:3, lora r32." in text


def test_the_frontier_figure_draws_what_its_labels_say(monkeypatch, tmp_path):
    """Log x, each configuration's bar its seed-level half-width, the front a step through the
    non-dominated points, the band and the dashed line 2 points below centralized."""
    from bench.report import frontier_plot

    drawn = {}
    monkeypatch.setattr(frontier_plot, "save", lambda fig, folder, name: drawn.setdefault(name, fig))
    table = _table()
    for i, row in enumerate(table):
        row["metric_ci95"] = 0.001 * (i + 1)
    assert frontier_plot.frontier(None, tmp_path, table)
    (ax,) = drawn["frontier"].axes
    assert ax.get_xscale() == "log"
    bars = {(c.lines[0].get_xdata()[0], round(c.lines[0].get_ydata()[0], 4)): c for c in ax.containers}
    for row in table[1:]:  # every configuration, one bar as wide as its half-width
        segment = bars[(row["bytes_to_best"], round(row["metric"], 4))].lines[2][0].get_segments()[0]
        assert segment[1][1] - segment[0][1] == pytest.approx(2 * row["metric_ci95"])
    dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert [ln.get_ydata()[0] for ln in dashed] == [pytest.approx(0.75 - 0.02)]
    (front,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("Pareto")]
    assert list(front.get_xdata()) == [1e5, 4e5, 1e7, 2e7, 3e7] and front.get_drawstyle() == "steps-post"
    table[1].update(bytes_to_best_min=5e8, bytes_to_best_max=2e9)  # FedAvg's seeds stopped apart
    drawn.clear()
    frontier_plot.frontier(None, tmp_path, table)
    (ax,) = drawn["frontier"].axes
    (fedavg,) = [c for c in ax.containers if c.lines[0].get_xdata()[0] == 1e9]
    horizontal = fedavg.lines[2][0].get_segments()[0]  # x bars come first
    assert (horizontal[0][0], horizontal[1][0]) == (5e8, 2e9)
    top2 = next(r for r in table if r["method"] == "layerskip top:2")
    twin = dict(top2, method="layerskip auto:2 [4 5]", layers="auto:2")  # top:2's point exactly
    drawn.clear()
    frontier_plot.frontier(None, tmp_path, [*table, twin])
    labels = [a.get_text() for a in drawn["frontier"].axes[0].texts]
    assert "layerskip top:2 = layerskip auto:2 [4 5]" in labels and "layerskip top:2" not in labels
    assert len(labels) == len(table) - 1  # one label per point: every configuration but centralized


def test_the_band_is_centralized_s_interval_and_the_gap_figure_plots_each_family_s_seed_intervals(
    monkeypatch, tmp_path
):
    from bench.report import frontier_plot

    drawn = {}
    monkeypatch.setattr(frontier_plot, "save", lambda fig, folder, name: drawn.setdefault(name, fig))
    table = _table()
    table[0]["metric_ci95"] = 0.03  # centralized's
    table[3].update(complete=False, seeds_planned=5)  # top:3 still running: hollow
    frontier_plot.frontier(None, tmp_path, table)
    (ax,) = drawn["frontier"].axes
    (band,) = ax.patches
    assert (band.get_y(), band.get_y() + band.get_height()) == (
        pytest.approx(0.72),
        pytest.approx(0.78),
    )  # 0.75 +- 0.03
    solid = [ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "-" and ln.get_color() == "0.4"]
    assert solid == [0.75]
    assert frontier_plot.gap_vs_trainable(None, tmp_path, table)
    (ax,) = drawn["gap_vs_trainable"].axes
    assert ax.get_xscale() == "log"
    lines = {c.get_label(): c for c in ax.containers}
    assert set(lines) == {"fedavg", "layerskip top", "layerskip bottom", "lora"}
    top = lines["layerskip top"]
    assert list(top.lines[0].get_xdata()) == [15, 25, 35]  # % trained, in order
    assert list(top.lines[0].get_ydata()) == pytest.approx([-1.5, -0.75, -0.6])  # 100 x diff
    ends = [sorted(seg[:, 1]) for seg in top.lines[2][0].get_segments()]
    assert ends == [pytest.approx([-5.0, 2.0]), pytest.approx([-1.5, 0.0]), pytest.approx([-1.2, 0.0])]  # lo..hi
    (hollow,) = [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "white"]
    assert (list(hollow.get_xdata()), list(hollow.get_ydata())) == ([25], [pytest.approx(-0.75)])


def test_the_ncbi_frontier_runs_the_issues_configurations_and_reuses_mains_cells_by_identity():
    """Issue 25's list (top:1-6, bottom:1-3, LoRA r2/r8/r32, FedAvg, centralized; iid, 4 clients,
    3 lr points each, 3 reported seeds and a tuning seed), and the cells main has run are the same runs."""
    from bench.protocol.grid import expand_studies

    _, grid = load_grid("ncbi")
    cells = expand_studies(grid)

    def label(cell):
        c = cell.config
        return c.method + (f" {c.layers}" if c.layers else "") + (f" r{c.lora_rank}" if c.method == "lora" else "")

    front = cells["frontier"]
    expected = {"centralized", "fedavg", *(f"layerskip top:{k}" for k in range(1, 7))}
    expected |= {*(f"layerskip bottom:{k}" for k in (1, 2, 3)), "lora r2", "lora r8", "lora r32"}
    assert {label(c) for c in front} == expected
    assert {(c.config.partition, c.config.clients) for c in front} == {("iid", 4)}
    assert all(len(c.tune["lr"]) == 3 for c in front) and {c.config.seed for c in front} == {0, 1, 2, 3}
    main_ids = {c.run_id for c in cells["main"]}
    shared = {label(c) for c in front if c.run_id in main_ids}
    assert shared == {"centralized", "fedavg", "layerskip top:2", "layerskip bottom:2", "lora r8"}


def test_the_frontier_table_marks_a_difference_whose_seed_interval_holds_zero_not_significant():
    """The table's Δ cells say n.s. exactly where the seed-level interval contains 0, as the main table's do."""
    (found,) = frontier.frontier_sets(_table())
    cells = {
        line.split(" | ")[2]: line.split(" | ")[8]
        for line in frontier.markdown(frontier.table_rows(found)).splitlines()[2:]
    }
    assert cells["layerskip top:2"] == "-1.5 [-5.0, +2.0] n.s."  # interval holds 0
    assert cells["layerskip bottom:1"] == "-15.0 [-17.0, -13.0]"  # wholly below 0: a real difference
    assert cells["lora r8"] == "-5.0 [-7.0, -3.0]"


def test_each_step_up_the_front_is_tested_by_seed_against_the_next_cheaper_point():
    """The front ranks by means; a step up it is real only if its paired seed-level gain excludes 0."""
    table = _table()
    rows = {r["method"]: r for r in table}
    per_seed = {  # the front is lora r2 -> lora r8 -> top:2 -> top:3 -> top:4 (by means)
        "lora r2": {1: 0.64, 2: 0.65, 3: 0.66},
        "lora r8": {1: 0.69, 2: 0.70, 3: 0.71},  # +5 points on every seed: a real step
        "layerskip top:2": {1: 0.76, 2: 0.70, 3: 0.745},
    }
    for method, seeds in per_seed.items():
        rows[method]["seed_metrics"] = seeds
    (found,) = frontier.frontier_sets(table)
    steps = {r["configuration"]: r for r in frontier.table_rows(found)}
    assert steps["lora r8"]["step_over"] == "lora r2" and steps["lora r8"]["step_diff"] == pytest.approx(0.05)
    assert steps["lora r8"]["step_seed_lo"] == pytest.approx(0.05)  # no spread: ...
    assert steps["lora r8"]["step_no_verdict"] == "no finite spread over seeds"  # ...shown, not judged
    rows["lora r8"]["seed_metrics"] = {1: 0.69, 2: 0.705, 3: 0.71}  # +5, +5.5, +5
    (found,) = frontier.frontier_sets(table)
    lines = frontier.markdown(frontier.table_rows(found)).splitlines()[2:]
    cells = {line.split(" | ")[2]: line.rstrip(" |").split(" | ")[-1] for line in lines}
    assert cells["lora r8"].startswith("+5.2 [+4.4, +5.9] over lora r2")
    assert cells["layerskip top:2"] == "+3.3 [-6.0, +12.7] n.s. over lora r8"  # +7, -0.5, +3.5 points
    assert (
        cells["layerskip top:3"] == "fewer than 2 paired seeds (0) over layerskip top:2" and cells["lora r2"] == "yes"
    )
    text = " ".join(frontier_headline.headline(table))
    assert "lora r8 (0.700; step over lora r2: +5.2 [+4.4, +5.9])" in text
    assert "layerskip top:2 (0.735; step over lora r8: +3.3 [-6.0, +12.7] n.s.)" in text
    assert "each step up is then tested, as the gain in points" in text


def test_a_step_pairs_by_seed_number_over_shared_seeds_and_only_the_front_row_carries_it():
    table = _table()
    rows = {r["method"]: r for r in table}
    rows["lora r2"]["seed_metrics"] = {3: 0.66, 1: 0.64, 2: 0.65, 4: 0.10}  # listed out of order; seed 4 unshared
    rows["lora r8"]["seed_metrics"] = {1: 0.69, 2: 0.705, 3: 0.71, 5: 0.99}  # seed 5 unshared
    rows["layerskip top:2"]["seed_metrics"] = {3: 0.74, 6: 0.70}  # one seed shared with lora r8
    twin = dict(rows["lora r8"], seed_role="tuning only", seed_metrics={0: 0.9})  # same name, not ranked
    (found,) = frontier.frontier_sets([*table, twin])
    marked = [r for r in frontier.table_rows(found) if r["configuration"] == "lora r8"]
    ranked, tuning = sorted(marked, key=lambda r: bool(r["unranked"]))
    assert ranked["step_diff"] == pytest.approx((0.05 + 0.055 + 0.05) / 3) and ranked["step_seeds"] == 3
    assert tuning["step_over"] == "" and tuning["step_diff"] is None  # the step is the front row's alone
    top2 = next(r for r in frontier.table_rows(found) if r["configuration"] == "layerskip top:2")
    assert top2["step_seeds"] == 1 and frontier.markdown([top2]).rstrip(" |\n").endswith(
        "fewer than 2 paired seeds (1) over lora r8"
    )


def test_a_configuration_tied_exactly_with_a_front_point_says_so():
    twin = dict(_row("layerskip", "top:5", metric=0.74, moved=2e7), method="layerskip top:5")  # ties top:3
    (found,) = frontier.frontier_sets([*_table(), twin])
    rows = {r["configuration"]: r for r in frontier.table_rows(found)}
    drawn, other = sorted(("layerskip top:3", "layerskip top:5"), key=lambda m: bool(rows[m]["tied_with"]))
    assert rows[drawn]["step_over"] == "layerskip top:2" and rows[other]["tied_with"] == drawn
    assert "tied with " + drawn + " (same bytes and mean)" in frontier.markdown([rows[other]])
