"""A result's identity is its whole configuration: ids, the store's refusals, and report groups."""

import json

import pytest

from bench.config import ExperimentConfig, first_difference
from bench.protocol.grid import GRID_DIR, expand, expand_studies, load_grid, studies
from bench.report.tables import main_table
from tests.cli import run_all_main


@pytest.mark.parametrize("name", sorted(p.stem for p in GRID_DIR.glob("*.yaml")))
def test_shipped_grids_expand_to_their_product_with_unique_ids(name):
    from baselines import METHODS

    _, grid = load_grid(name)
    per_study = expand_studies(grid)
    for study_name, study in studies(grid).items():
        tasks, parts = len(study["tasks"]), len(study["partitions"])
        seeds, eps = len(study.get("seeds") or [0]), len(study.get("dp_epsilons") or [None])
        methods = [m if isinstance(m, dict) else {"method": m} for m in study["methods"]]
        per_method = [1 if METHODS.get(m["method"]).partition_free else parts for m in methods]  # centralized: once
        assert len(per_study[study_name]) == tasks * seeds * eps * sum(per_method), study_name
    cells = expand(grid)
    assert len({c.run_id for c in cells}) == len(cells)
    assert len(cells) == len({c.run_id for members in per_study.values() for c in members})  # shared cells once


@pytest.mark.parametrize(
    "change",
    [
        {"lr": 3e-4},
        {"model": "tiny-llama"},
        {"rounds": 4},
        {"dp_epsilon": 4.0},
        {"client_budgets": "by-size"},
        {"max_length": 96},
        {"mu": 0.1},
    ],
)
def test_one_setting_changes_the_id(change):
    base = ExperimentConfig(task="i2b2-2010", method="layerskip", layers="top:8")
    assert base.with_settings(**change).run_id != base.run_id
    assert first_difference(base.to_dict(), base.with_settings(**change)).startswith(next(iter(change)))


def test_a_stored_run_made_under_an_older_default_is_told_apart():
    """README, design notes: identities hash only settings off their defaults, so a run stored
    when a default was different has today's identity; comparing the whole stored config catches
    it (the comparison must cover every computed setting, not only those the hash covers)."""
    cfg = ExperimentConfig(task="i2b2-2010", method="fedavg")
    stored = {**cfg.to_dict(), "max_length": cfg.max_length * 2}  # the default it ran under, changed since
    assert first_difference(stored, cfg) == f"max_length (stored {cfg.max_length * 2}, now {cfg.max_length})"
    assert first_difference(cfg.to_dict(), cfg) is None


def test_dp_settings_count_only_under_dp():
    plain = ExperimentConfig(task="i2b2-2010", method="fedavg")
    assert plain.with_settings(dp_level="client", max_grad_norm=3.0).run_id == plain.run_id  # nothing computed differs
    private = plain.with_settings(dp_epsilon=4.0)
    assert private.with_settings(dp_level="client").run_id != private.run_id


def test_execution_settings_keep_the_id():
    base = ExperimentConfig(task="i2b2-2010", method="fedavg")
    assert base.with_settings(workers=4, backend="ray", gpus_per_worker=0.25, cpus_per_worker=2).run_id == base.run_id
    assert (
        ExperimentConfig.from_dict({"task": "i2b2-2010", "method": "fedavg", "lr": "1e-4"}).run_id
        == ExperimentConfig.from_dict({"task": "i2b2-2010", "method": "fedavg", "lr": 0.0001}).run_id
    )


def test_duplicate_cell_is_an_error(tmp_path):
    from bench.errors import BenchError

    path = tmp_path / "g.yaml"
    path.write_text("tasks: [i2b2-2010]\nmethods: [{method: fedavg}, {method: fedavg}]\npartitions: [iid]\n")
    with pytest.raises(BenchError, match="two cells are the same run"):
        expand(load_grid(str(path))[1])


def test_changed_lr_reruns_and_a_tampered_folder_is_refused(tiny_corpus, tmp_path):
    def grid(lr):
        path = tmp_path / "g.yaml"
        path.write_text(f"""name: t
defaults: {{model: tiny-bert, clients: 2, rounds: 1, max_length: 32, data_dir: "{tiny_corpus / "i2b2-2010"}", lr: {lr}}}
tasks: [i2b2-2010]
methods: [{{method: layerskip, layers: "top:1"}}]
partitions: [iid]
""")
        return path

    def run(lr, check=True):
        return run_all_main("--grid", grid(lr), "--out", tmp_path / "o", check=check)

    assert "1 ok" in run(1e-3).stdout
    assert "1 skipped" in run(1e-3).stdout
    assert "1 ok" in run(2e-3).stdout  # a new lr is a new cell, never the old result
    assert len(list((tmp_path / "o/runs").iterdir())) == 2
    folder = next(
        p for p in (tmp_path / "o/runs").iterdir() if json.loads((p / "config.json").read_text())["lr"] == 2e-3
    )
    stored = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**stored, "rounds": 7}))
    proc = run(2e-3, check=False)
    assert proc.returncode == 2 and "stored config differs" in proc.stderr and "rounds" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def _run(seed, method="fedavg", layers=None, eps=None, spent=None, budgets=None, noise=None, metric=0.5, lr=1e-3):
    cfg = ExperimentConfig(
        task="i2b2-2010",
        method=method,
        layers=layers,
        seed=seed,
        dp_epsilon=eps,
        client_budgets=budgets,
        noise_multiplier=noise,
        lr=lr,
    )
    return {
        "config": cfg.to_dict(),
        "status": "ok",
        "metric": metric,
        "epsilon": spent,
        "bytes_up_total": 10,
        "bytes_down_total": 10,
        "trainable_params": 1,
        "total_params": 2,
        "rounds": 1,
        "rounds_run": 1,
        "history": [],
        "test_items": None,
        "method_info": {},
        "val_metric": metric,
    }


def test_report_groups_by_configured_target_never_spent_epsilon():
    runs = [
        _run(0, eps=4.0, spent=3.91),
        _run(1, eps=4.0, spent=3.97),  # one cell, two seeds
        _run(0, eps=None),
        _run(1, eps=None),
        _run(0, "layerskip", "top:2"),
        _run(1, "layerskip", "top:2"),
        _run(0, "layerskip", "top:2", budgets="by-size"),  # a different cell
        _run(0, noise=1.0, spent=2.5),  # a noise multiplier is not a target
    ]
    table = main_table(runs)
    rows = {(t["method"], t["epsilon"]): t for t in table}
    assert len(table) == 5
    assert rows[("fedavg", 4.0)]["seeds"] == 2 and rows[("fedavg", 4.0)]["epsilon_spent"] == 3.97
    assert rows[("layerskip top:2", None)]["seeds"] == 2
    assert rows[("layerskip top:2 budgets=by-size", None)]["seeds"] == 1
    assert (
        sum(t["seeds"] for t in table if t["method"] == "fedavg" and t["epsilon"] is None) == 3
    )  # plain + noise-multiplier rows


def test_with_two_fedavg_cells_every_row_compares_with_the_sweeps_choice():
    """A grid whose studies fix FedAvg at another lr (NCBI's `mu`) holds two FedAvg cells per
    partition. Every row compares with the lr the sweep chose (best on the tuning seed), even
    where the other scored higher on the reported seeds' validation and where a row ran at the
    other's lr. The table once took whichever cell came last."""
    chosen, other = 1e-4, 3e-4
    runs = [
        {**_run(0, lr=chosen, metric=0.8), "role": "tuning"},  # first: a table taking the last cell takes the other
        {**_run(0, lr=other, metric=0.7), "role": "tuning"},
        _run(1, lr=chosen, metric=0.70),
        _run(2, lr=chosen, metric=0.72),
        {**_run(1, lr=other, metric=0.60), "val_metric": 0.9},
        {**_run(2, lr=other, metric=0.62), "val_metric": 0.9},
        _run(1, "fedprox", lr=other, metric=0.65),
        _run(2, "fedprox", lr=other, metric=0.66),
        _run(1, "layerskip", "top:2", lr=1e-3, metric=0.50),
        _run(2, "layerskip", "top:2", lr=1e-3, metric=0.50),
    ]
    rows = {(t["method"], t["lr"]): t for t in main_table(runs)}
    assert rows[("fedprox", other)]["vs_fedavg_seed"]["diff"] == pytest.approx(-0.055)
    assert rows[("layerskip top:2", 1e-3)]["vs_fedavg_seed"]["diff"] == pytest.approx(-0.21)
    assert rows[("fedavg", other)]["matched_seeds"] is None  # no centralized cell: no target, not "0/2 reached"
    assert (rows[("fedavg", chosen)]["is_reference"], rows[("fedavg", other)]["is_reference"]) == (True, False)
    assert rows[("fedprox", other)]["is_reference"] is None


def test_a_run_stored_before_a_setting_existed_shares_its_cell_with_later_runs():
    from bench.report.tables import cell_key

    before = {"config": {**ExperimentConfig(task="conll", method="fedavg", seed=0).to_dict()}}
    del before["config"]["length_buckets"]  # stored before the setting existed
    after = {"config": ExperimentConfig(task="conll", method="fedavg", seed=1).to_dict()}
    other = {"config": ExperimentConfig(task="conll", method="fedavg", seed=1, length_buckets=8).to_dict()}
    assert cell_key(before) == cell_key(after) != cell_key(other)
